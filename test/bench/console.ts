/**
 * Server time of the console's machines page with many machines: a tailnet of `nodes` machines (half online, a
 * quarter tagged, some advertising routes) behind a logged-in session, then GET /admin/machines (first page, and
 * a search that matches a few) through fastify's in-process inject, so only the server's work is timed.
 * Run alone: node --import tsx test/bench/console.ts [nodes]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createAdminApp } from '../../src/admin/app.ts';
import { createPolicyChecker } from '../../src/admin/policy-checker.ts';
import { createPolicyView } from '../../src/state/policy-view.ts';
import { createRegistrations } from '../../src/state/registrations.ts';
import { createTailnet } from '../../src/state/tailnet.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';

export interface ConsoleBench {
  nodes: number;
  /** Median and worst of the timed requests, in ms. */
  firstPageMs: { median: number; max: number };
  searchMs: { median: number; max: number };
}

const key = (prefix: string) => `${prefix}:${randomBytes(32).toString('hex')}`;

export async function benchConsole(nodes: number, rounds = 15): Promise<ConsoleBench> {
  const dir = mkdtempSync(join(tmpdir(), 'tailplane-console-bench-'));
  const store = openSqliteStore(join(dir, 'tailplane.sqlite'));
  const dns = { magicDns: true, overrideLocalDns: true, baseDomain: 'bench.example', nameservers: [], splitDns: {}, searchDomains: [], extraRecords: [] };
  const t = createTailnet(store, { prefixes: { v4: '100.64.0.0/10', v6: 'fd7a:115c:a1e0::/48', allocation: 'sequential' }, defaultDns: dns, expirySeconds: 180 * 86400 });
  const users = Array.from({ length: 50 }, (_, i) => t.users.create({ name: `user${i}` }));
  for (let i = 0; i < nodes; i++) {
    const tagged = i % 4 === 0;
    const n = t.nodes.register({
      machineKey: key('mkey'),
      nodeKey: key('nodekey'),
      hostname: `host-${i}`,
      hostinfo: { OS: 'linux', IPNVersion: i % 3 ? '1.102.5' : '1.100.0', ...(i % 50 === 0 ? { RoutableIPs: [`10.${i % 250}.0.0/24`] } : {}) },
      userId: tagged ? null : users[i % users.length]!.id,
      tags: tagged ? [`tag:t${i % 7}`] : [],
      ephemeral: false,
      method: 'authkey',
    });
    if (i % 2 === 0) t.nodes.setOnline(n.id, true);
  }
  const { key: apiKey } = t.apiKeys.create({});
  const app = createAdminApp({
    tailnet: t,
    registrations: createRegistrations({ ttlMs: 60_000 }),
    policy: createPolicyChecker(t),
    livePolicy: createPolicyView(t, { serverUrl: 'http://bench' }).current,
    primaryRoutes: () => new Map(),
    logLevel: false,
    serverUrl: () => 'http://bench',
  });
  await app.ready();
  const loginPage = await app.inject({ url: '/admin/login' });
  const loginCookie = String(loginPage.headers['set-cookie']).split(';')[0]!;
  const csrf = /name="_csrf" value="([^"]+)"/.exec(loginPage.body)![1]!;
  const login = await app.inject({
    method: 'POST',
    url: '/admin/login',
    headers: { cookie: loginCookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ _csrf: csrf, key: apiKey }).toString(),
  });
  const session = ([login.headers['set-cookie']].flat() as string[]).find((c) => c.startsWith('tailplane_session='))!.split(';')[0]!;
  const time = async (url: string) => {
    const ms: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      const res = await app.inject({ url, headers: { cookie: session } });
      ms.push(performance.now() - t0);
      if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode}`);
    }
    ms.sort((a, b) => a - b);
    return { median: Math.round(ms[ms.length >> 1]! * 10) / 10, max: Math.round(ms[ms.length - 1]! * 10) / 10 };
  };
  const result = { nodes, firstPageMs: await time('/admin/machines'), searchMs: await time('/admin/machines?q=host-99&online=yes') };
  await app.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const nodes = Number(process.argv[2] ?? 10_000);
  console.log(JSON.stringify(await benchConsole(nodes)));
}
