/**
 * Registrations per second through the state layer alone (no network, no maps), on a real SQLite file and a
 * real PostgreSQL 15 with fsync on: one by one (each waits for its own commit, as an admin's write does) and in
 * bursts of 32 joining one group commit (as a fleet of clients coming up does). Run by `npm run bench`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openPostgresStore } from '../../src/store/postgres/store.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import { createTailnet } from '../../src/state/tailnet.ts';
import { startPostgres } from '../helpers/postgres.ts';

export interface StoreWrites {
  readonly store: 'sqlite' | 'postgres';
  readonly burst: number;
  readonly perSec: number;
}

const dns = { magicDns: true, overrideLocalDns: true, baseDomain: 'bench.example', nameservers: [], splitDns: {}, searchDomains: [], extraRecords: [] };
const burst = 32;

async function measure(store: Store, kind: StoreWrites['store'], n: number): Promise<StoreWrites[]> {
  const t = createTailnet(store, { prefixes: { v4: '100.64.0.0/10', v6: 'fd7a:115c:a1e0::/48', allocation: 'sequential' }, defaultDns: dns, expirySeconds: 0 });
  const user = t.users.create({ name: 'bench' });
  const input = (i: number) => ({
    machineKey: `mkey:${randomBytes(32).toString('hex')}`, nodeKey: `nodekey:${randomBytes(32).toString('hex')}`, hostname: `h${i}`,
    hostinfo: {}, userId: user.id, tags: [], ephemeral: false, method: 'authkey' as const,
  });
  const out: StoreWrites[] = [];
  for (const size of [1, burst]) {
    const t0 = performance.now();
    for (let i = 0; i < n; i += size) {
      if (size === 1) t.nodes.register(input(i));
      else await Promise.all(Array.from({ length: size }, (_, j) => t.nodes.registerGrouped(input(i + j)).durable));
    }
    out.push({ store: kind, burst: size, perSec: (n / (performance.now() - t0)) * 1000 });
  }
  store.close();
  return out;
}

export async function benchStoreWrites(n = 1024): Promise<StoreWrites[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tailplane-store-writes-'));
  const db = await startPostgres({ durable: true });
  try {
    return [
      ...(await measure(openSqliteStore(join(dir, 'tailplane.sqlite')), 'sqlite', n)),
      ...(await measure(openPostgresStore({ url: db.url, poolSize: 4, timeoutMs: 5000, tls: 'off' }), 'postgres', n)),
    ];
  } finally {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function storeWritesMarkdown(rows: StoreWrites[]): string {
  const rate = (store: string, b: number) => rows.find((r) => r.store === store && r.burst === b)!.perSec.toFixed(0);
  return [
    '| store | one by one | grouped (bursts of 32) |',
    '|---|---|---|',
    `| SQLite (WAL fsynced per commit) | ${rate('sqlite', 1)}/s | ${rate('sqlite', burst)}/s |`,
    `| PostgreSQL 15 (fsync on) | ${rate('postgres', 1)}/s | ${rate('postgres', burst)}/s |`,
  ].join('\n');
}
