/**
 * High availability with real parts: PostgreSQL 15, two `tailplane serve` replicas behind Debian's haproxy
 * (TCP mode, health checks), three tailscaled clients spread over the replicas by the load balancer. A change
 * through one replica reaches clients on the other within a second; kill -9 of a replica moves its clients to
 * the other without losing what it acknowledged; the leader's death moves ephemeral GC; a PostgreSQL restart
 * under load is survived without restarting anything.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createHarness, freePort, type Daemon } from '../harness/tailscaled.ts';
import { api, spawnServer, tempDir, type ChildServer } from '../helpers/server.ts';
import { startHaproxy, type Haproxy } from '../helpers/haproxy.ts';
import { startPostgres, type Postgres } from '../helpers/postgres.ts';
import { withLogs } from '../helpers/failure.ts';

const harness = createHarness();
let db: Postgres;
let lb: Haproxy;
/** The replicas by name; a killed one is started again under the same name, port and data dir. */
const replicas: Record<'a' | 'b', { port: number; dataDir: string; server?: ChildServer }> = {
  a: { port: 0, dataDir: tempDir('tailplane-ha-a-') },
  b: { port: 0, dataDir: tempDir('tailplane-ha-b-') },
};
let apiKey = '';
let authKey = '';
const clients: Daemon[] = [];
/** Which replica each client's control connection landed on. */
const home = new Map<Daemon, 'a' | 'b'>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logs = () => Object.entries(replicas).map(([n, r]) => `[${n}] ${(r.server?.log() ?? '').split('\n').slice(-25).join(`\n[${n}] `)}`).join('\n');
const direct = (name: 'a' | 'b') => ({ url: `http://127.0.0.1:${replicas[name].port}`, apiKey });
const other = (name: 'a' | 'b') => (name === 'a' ? 'b' : 'a');

async function startReplica(name: 'a' | 'b', regionId: number): Promise<ChildServer> {
  const r = replicas[name];
  r.server = await spawnServer({
    dataDir: r.dataDir,
    listen: `127.0.0.1:${r.port}`,
    startMs: 90_000,
    env: {
      TAILPLANE_STORE_TYPE: 'postgres',
      TAILPLANE_STORE_POSTGRES_URL: db.url,
      TAILPLANE_SERVER_URL: lb.url,
      TAILPLANE_DERP_REGION_ID: String(regionId),
      TAILPLANE_DERP_REGION_CODE: `replica-${name}`,
      TAILPLANE_DERP_URL: `http://127.0.0.1:${r.port}`,
      TAILPLANE_NODE_EPHEMERAL_INACTIVITY_SECONDS: '3',
    },
  });
  return r.server;
}

type Health = { status: string; store: string; replica?: { ok: boolean; leader: boolean; clients: number; replicas: number; notifications: { listening: boolean } } };
/** A replica's health in detail (GET /api/v1/health, with the API key); undefined while it does not answer. */
async function health(name: 'a' | 'b'): Promise<Health | undefined> {
  try {
    const headers = { authorization: `Bearer ${apiKey}` };
    return (await (await fetch(`${direct(name).url}/api/v1/health`, { headers, signal: AbortSignal.timeout(2000) })).json()) as Health;
  } catch {
    return undefined;
  }
}
const clientsOn = async (name: 'a' | 'b') => (await health(name))?.replica?.clients ?? 0;

async function until<T>(what: string, fn: () => T | Promise<T>, ms: number): Promise<Exclude<T, false | undefined | null | 0 | ''>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as Exclude<T, false | undefined | null | 0 | ''>;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

before(async () => {
  db = await startPostgres();
  replicas.a.port = await freePort();
  replicas.b.port = await freePort();
  lb = await startHaproxy([
    { name: 'a', host: '127.0.0.1', port: replicas.a.port },
    { name: 'b', host: '127.0.0.1', port: replicas.b.port },
  ]);
  const a = await startReplica('a', 901);
  apiKey = a.apiKey;
  // The first admin key lives in PostgreSQL now; B's data dir gets the file so the helper can read it.
  writeFileSync(join(replicas.b.dataDir, 'admin-api-key'), apiKey + '\n', { mode: 0o600 });
  await startReplica('b', 902);
  await api(direct('a'), 'POST', '/api/v1/user', { name: 'alice', email: 'alice@example.com' });
  authKey = (await api(direct('b'), 'POST', '/api/v1/preauthkey', { user: '1', reusable: true })).json.preAuthKey.key;
  // Wait for both replicas to be in the load balancer's rotation (health checks).
  await sleep(1500);
});

after(async () => {
  await harness.cleanup();
  for (const r of Object.values(replicas)) await r.server?.stop('SIGKILL');
  await lb?.stop();
  await db?.destroy();
});

/** Joins a client through the load balancer and records which replica its control connection reached. */
async function joinClient(name: string, key = authKey): Promise<Daemon> {
  const before = { a: await clientsOn('a'), b: await clientsOn('b') };
  const d = await harness.start({ name });
  const r = await d.up({ loginServer: lb.url, authKey: key, hostname: name, timeoutMs: 90_000 });
  assert.equal(r.code, 0, `tailscale up for ${name}: ${r.stderr}${r.stdout}`);
  const on = await until(`${name} to show up on a replica`, async () => {
    if ((await clientsOn('a')) > before.a) return 'a' as const;
    if ((await clientsOn('b')) > before.b) return 'b' as const;
    return undefined;
  }, 15_000);
  home.set(d, on);
  return d;
}

const peersOf = async (d: Daemon) => Object.values((await d.status()).Peer ?? {});

test('what one replica acknowledged, the next API request sees on the other (read your writes through a load balancer)', async () => {
  for (let i = 0; i < 20; i++) {
    const [writer, reader] = i % 2 ? (['b', 'a'] as const) : (['a', 'b'] as const);
    const made = await api(direct(writer), 'POST', '/api/v1/user', { name: `ryw-${i}` });
    assert.equal(made.status, 200, JSON.stringify(made.json));
    const users = (await api(direct(reader), 'GET', '/api/v1/user')).json.users as { name: string }[];
    assert.ok(users.some((u) => u.name === `ryw-${i}`), `user ryw-${i} made on ${writer} is seen at once on ${reader}`);
  }
});

test('three clients over two replicas see each other and ping; a change through one replica reaches clients on the other within 1 s', async () => {
  await withLogs(harness, logs, 'spread', async () => {
    // Joins until both replicas hold a client (haproxy's round robin spreads them, but tailscaled's connections vary).
    for (let i = 1; i <= 3 || (new Set(home.values()).size < 2 && i <= 6); i++) clients.push(await joinClient(`c${i}`));
    console.log(`# clients per replica: ${clients.map((c) => `${c.name}→${home.get(c)}`).join(', ')}`);
    const a = await health('a');
    const b = await health('b');
    assert.equal(a?.replica?.replicas, 2);
    // What anyone (the load balancer) sees: the verdict, not the replica's identity or its clients.
    assert.deepEqual(await (await fetch(`${direct('a').url}/health`)).json(), { status: 'ok', store: 'ok', replica: { ok: true } });
    assert.equal([a, b].filter((h) => h?.replica?.leader).length, 1, 'exactly one leader');
    for (const c of clients) await c.waitFor(async () => (await peersOf(c)).filter((p) => p.Online).length === clients.length - 1, 30_000, `${c.name} sees every peer online`);
    const [c1, c2] = clients;
    const ip2 = (await c2!.ip())[0]!;
    await c1!.waitFor(async () => (await c1!.ping(ip2, { timeoutMs: 10_000 })).stdout.includes('pong'), 30_000, 'c1 pings c2');

    // The change goes through the replica the target client is NOT on.
    const target = clients.find((c) => home.get(c) === 'b') ?? clients[0]!;
    const via = other(home.get(target)!);
    const nodes = (await api(direct(via), 'GET', '/api/v1/node')).json.nodes as { id: string; givenName: string }[];
    const id = nodes.find((n) => n.givenName === target.name)!.id;
    await api(direct(via), 'PUT', '/api/v1/policy', { policy: '{"tagOwners":{"tag:ha":["alice@example.com"]},"acls":[{"action":"accept","src":["*"],"dst":["*:*"]}]}' });
    const t0 = performance.now();
    const tagged = await api(direct(via), 'POST', `/api/v1/node/${id}/tags`, { tags: ['tag:ha'] });
    assert.equal(tagged.status, 200, JSON.stringify(tagged.json));
    await until(`${target.name} to be tagged`, async () => ((await target.status()).Self?.Tags as string[] | undefined)?.includes('tag:ha'), 5000);
    const ms = performance.now() - t0;
    console.log(`# tag set through replica ${via} reached ${target.name} on replica ${home.get(target)} in ${ms.toFixed(0)} ms`);
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);

    // A peer on the other replica sees the change too (its peer entry).
    const watcher = clients.find((c) => c !== target && home.get(c) === via);
    if (watcher) await until(`${watcher.name} sees ${target.name} tagged`, async () => (await peersOf(watcher)).some((p) => p.HostName === target.name && (p.Tags as string[] | undefined)?.includes('tag:ha')), 2000);
  });
});

test('kill -9 of a replica: its clients reconnect through haproxy to the other, keep pinging, and nothing it acknowledged is lost', async () => {
  await withLogs(harness, logs, 'kill', async () => {
    const victim = home.get(clients[0]!)!;
    const survivor = other(victim);
    // Acknowledged by the victim just before it dies.
    const made = await api(direct(victim), 'POST', '/api/v1/user', { name: 'bob', email: 'bob@example.com' });
    assert.equal(made.status, 200);
    const renamed = await api(direct(victim), 'POST', `/api/v1/node/${(await api(direct(victim), 'GET', '/api/v1/node')).json.nodes.find((n: { givenName: string }) => n.givenName === clients[1]!.name).id}/rename/moved`);
    assert.equal(renamed.status, 200);
    const t0 = Date.now();
    await replicas[victim].server!.stop('SIGKILL');
    const users = (await api(direct(survivor), 'GET', '/api/v1/user')).json.users as { name: string }[];
    assert.ok(users.some((u) => u.name === 'bob'), 'the user the dead replica acknowledged is there');
    const nodes = (await api(direct(survivor), 'GET', '/api/v1/node')).json.nodes as { givenName: string; online: boolean }[];
    assert.ok(nodes.some((n) => n.givenName === 'moved'), 'the rename the dead replica acknowledged is there');
    // Every client ends up on the survivor, sees its peers online and pings them.
    await until('every client on the survivor', async () => (await clientsOn(survivor)) === clients.length, 60_000);
    console.log(`# all ${clients.length} clients on replica ${survivor} ${Date.now() - t0} ms after the kill`);
    const [c1, c2, c3] = clients;
    for (const [from, to] of [[c1!, c2!], [c2!, c3!], [c3!, c1!]] as const) {
      const ip = (await to.ip())[0]!;
      await from.waitFor(async () => (await from.ping(ip, { timeoutMs: 10_000 })).stdout.includes('pong'), 60_000, `${from.name} pings ${to.name}`);
    }
    await c1!.waitFor(async () => (await peersOf(c1!)).some((p) => p.HostName === clients[1]!.name && p.DNSName?.startsWith('moved.')), 20_000, 'c1 knows c2 as moved');
    for (const c of clients) home.set(c, survivor);
    console.log(`# pings across all clients ${Date.now() - t0} ms after the kill`);
    // The dead replica comes back (same port and data dir) as a follower.
    await startReplica(victim, victim === 'a' ? 901 : 902);
    await until('both replicas live again', async () => (await health(survivor))?.replica?.replicas === 2, 20_000);
  });
});

test('the leader dies: the other replica takes over ephemeral clean-up within 30 s', async () => {
  await withLogs(harness, logs, 'leader', async () => {
    const leader = (await health('a'))?.replica?.leader ? 'a' : 'b';
    const follower = other(leader);
    assert.equal((await health(follower))?.replica?.leader, false);
    const key = (await api(direct(follower), 'POST', '/api/v1/preauthkey', { user: '1', ephemeral: true })).json.preAuthKey.key;
    const eph = await joinClient("eph", key);
    const t0 = Date.now();
    await replicas[leader].server!.stop('SIGKILL');
    // The ephemeral client dies too (no logout): only the GC can remove it.
    eph.kill();
    await until('the follower to lead', async () => (await health(follower))?.replica?.leader, 15_000);
    await until('the ephemeral node to be deleted', async () => {
      const nodes = (await api(direct(follower), 'GET', '/api/v1/node')).json.nodes as { givenName: string }[];
      return !nodes.some((n) => n.givenName === 'eph');
    }, 30_000);
    const ms = Date.now() - t0;
    console.log(`# ephemeral node deleted by the new leader ${ms} ms after the old leader was killed`);
    assert.ok(ms < 30_000);
    await startReplica(leader, leader === 'a' ? 901 : 902);
    await until('both replicas live again', async () => (await health(follower))?.replica?.replicas === 2, 20_000);
  });
});

test('PostgreSQL restarts under load: writes fail with 503 meanwhile, replicas recover by themselves, no client keeps a stale map', async () => {
  await withLogs(harness, logs, 'pg-restart', async () => {
    const [c1, c2] = clients;
    let pinging = true;
    let pongs = 0;
    const ip2 = (await c2!.ip())[0]!;
    const load = (async () => {
      while (pinging) if ((await c1!.ping(ip2, { timeoutMs: 5000 })).stdout.includes('pong')) pongs++;
    })();
    try {
      await db.stop();
      const down = await api(direct('a'), 'POST', '/api/v1/user', { name: 'carol', email: 'carol@example.com' });
      assert.equal(down.status, 503, `a write while PostgreSQL is down: ${JSON.stringify(down.json)}`);
      await until('/health degraded', async () => (await health('a'))?.status === 'degraded', 10_000);
      await sleep(2000);
      await db.start();
      await until('both replicas healthy again', async () => (await health('a'))?.status === 'ok' && (await health('b'))?.status === 'ok', 30_000);
    } finally {
      // Left running after a failure, the loop would keep this file's process (and the suite) alive for ever.
      pinging = false;
      await load;
    }
    assert.ok(pongs > 0, 'pings kept working while PostgreSQL restarted');
    // A change through each replica reaches every client: nobody kept a stale map.
    for (const [via, tag] of [['a', 'tag:after-a'], ['b', 'tag:after-b']] as const) {
      await api(direct(via), 'PUT', '/api/v1/policy', { policy: `{"tagOwners":{"${tag}":["alice@example.com"]},"acls":[{"action":"accept","src":["*"],"dst":["*:*"]}]}` });
      const nodes = (await api(direct(via), 'GET', '/api/v1/node')).json.nodes as { id: string; givenName: string }[];
      const id = nodes.find((n) => n.givenName === c1!.name)!.id;
      assert.equal((await api(direct(via), 'POST', `/api/v1/node/${id}/tags`, { tags: [tag] })).status, 200);
      for (const c of clients.filter((x) => x !== c1)) {
        await until(`${c.name} sees c1 with ${tag}`, async () => (await peersOf(c)).some((p) => p.HostName === c1!.name && (p.Tags as string[] | undefined)?.includes(tag)), 5000);
      }
    }
  });
});
