/**
 * The high-availability figures of issue 19, run by `npm run bench` (--replica-nodes N, 0 to skip), each on
 * fresh servers so the phases do not see each other's nodes:
 *  - registrations: N simulated clients join, spread over two `tailplane serve` replicas on one PostgreSQL 15
 *    (node i dials replica i % 2, as a round-robin load balancer would), against N joining one server on SQLite;
 *  - fan-out: N clients stream from replica B, a policy change that alters every node's packet filter is made
 *    through replica A, and the time until the last client on B has it is reported, beside one SQLite server.
 * Both use the bench's grouped layout (policy.ts).
 * Server CPU is the sum over the replicas' processes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgres, type Postgres } from '../helpers/postgres.ts';
import { api, spawnServer, tempDir, type ChildServer } from '../helpers/server.ts';
import { now, startFleet, type Fleet } from './loadgen/fleet.ts';
import { sampleProc } from './proc.ts';
import { blockSize, policyText } from './policy.ts';
import { keyTarget } from './servers/server.ts';
import { provision, serverEnv as env } from './servers/tailplane.ts';

export interface ReplicaSetup {
  readonly registrationsPerSec: number;
  /** Server CPU per registration, summed over the setup's processes. */
  readonly cpuMsPerRegistration: number;
  /** A policy change made through the writer, until the last client (on the other replica) has it. */
  readonly fanOutMs: number;
  readonly fanOutReached: string;
}

export interface ReplicaBench {
  readonly nodes: number;
  readonly replicated: ReplicaSetup;
  readonly single: ReplicaSetup;
}

const blocks = (nodes: number) => Math.max(1, Math.ceil((nodes + 1) / blockSize));
const settleMs = 2000;

/**
 * `count` replicas of one tailnet on a database of `db` named `name`, each with a DERP region of its own; the
 * first creates the admin key, the others are given it (they share the database). `nodeOptions` goes to each
 * replica's NODE_OPTIONS.
 */
export async function startReplicas(db: Postgres, name: string, count: number, nodeOptions?: string): Promise<ChildServer[]> {
  const pgEnv = { ...env, TAILPLANE_STORE_TYPE: 'postgres', TAILPLANE_STORE_POSTGRES_URL: db.database(name), ...(nodeOptions ? { NODE_OPTIONS: [env.NODE_OPTIONS, nodeOptions].filter(Boolean).join(' ') } : {}) };
  const first = await spawnServer({ env: { ...pgEnv, TAILPLANE_DERP_REGION_ID: '901' }, startMs: 90_000 });
  const others = Array.from({ length: count - 1 }, (_, i) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'admin-api-key'), first.apiKey + '\n', { mode: 0o600 });
    return spawnServer({ dataDir: dir, env: { ...pgEnv, TAILPLANE_DERP_REGION_ID: String(902 + i) }, startMs: 90_000 });
  });
  return [first, ...(await Promise.all(others))];
}

/** Two replicas (A, B) on `db`, or one SQLite server when `db` is undefined (then A and B are the same). */
async function startSetup(db: Postgres | undefined, name: string): Promise<{ a: ChildServer; b: ChildServer; stop: () => Promise<void> }> {
  if (!db) {
    const one = await spawnServer({ env, startMs: 90_000 });
    return { a: one, b: one, stop: async () => void (await one.stop()) };
  }
  const [a, b] = (await startReplicas(db, name, 2)) as [ChildServer, ChildServer];
  return { a, b, stop: async () => void (await Promise.all([a.stop(), b.stop()])) };
}

const cpuSec = (servers: ChildServer[]) => [...new Set(servers)].reduce((s, x) => s + sampleProc(x.process.pid!).cpuSec, 0);

/**
 * N clients join the grouped layout (the bench's registration scenario), node i through servers[i % 2];
 * registrations/s counted to the last registration answered.
 */
async function registrations(servers: ChildServer[], nodes: number, concurrency: number): Promise<{ perSec: number; cpuMs: number; fleets: Fleet[] }> {
  const keys = await provision(servers[0]!, 'grouped', blocks(nodes));
  const fleets = await Promise.all(servers.map(async (s) => startFleet(await keyTarget(s.url), { concurrency: Math.ceil(concurrency / servers.length) })));
  const cpu0 = cpuSec(servers);
  const t0 = now();
  await Promise.all(Array.from({ length: nodes }, (_, i) => fleets[i % fleets.length]!.join(i, keys.node(i))));
  const regDone = fleets.flatMap((f) => f.nodes).reduce((m, x) => Math.max(m, x.firstMapAt - x.firstMapMs), 0);
  const cpuMs = ((cpuSec(servers) - cpu0) * 1000) / nodes;
  return { perSec: nodes / ((regDone - t0) / 1000), cpuMs, fleets };
}

async function measureSetup(db: Postgres | undefined, nodes: number, concurrency: number, log: (s: string) => void): Promise<ReplicaSetup> {
  const label = db ? '2 replicas on PostgreSQL' : '1 server on SQLite';
  // Registrations: spread over both replicas.
  const reg = await startSetup(db, 'reg');
  let perSec = 0;
  let cpuMs = 0;
  try {
    const r = await registrations(db ? [reg.a, reg.b] : [reg.a], nodes, concurrency);
    ({ perSec, cpuMs } = r);
    await Promise.all(r.fleets.map((f) => f.close()));
    log(`  ${label}: ${nodes} registrations at ${perSec.toFixed(0)}/s, server CPU ${cpuMs.toFixed(1)} ms each`);
  } finally {
    await reg.stop();
  }
  // Fan-out: every client on B, the change through A.
  const fan = await startSetup(db, 'fan');
  try {
    const { fleets } = await registrations([fan.b], nodes, concurrency);
    const fleet = fleets[0]!;
    await new Promise((r) => setTimeout(r, settleMs));
    const w = await fleet.watch([{ nodes: fleet.nodes, filter: true }]);
    const start = now();
    await api(fan.a, 'PUT', '/api/v1/policy', { policy: policyText('grouped', blocks(nodes), 1) });
    await w.wait(now() + 30_000);
    const got = await w.arrivals();
    await fleet.close();
    const matched = got.filter((x) => x.arrived === x.n).length;
    const fanOutMs = got.reduce((m, x) => Math.max(m, x.last), start) - start;
    log(`  ${label}: policy change through ${db ? 'A' : 'the server'} reached ${matched}/${nodes} clients${db ? ' on B' : ''} in ${fanOutMs.toFixed(0)} ms`);
    return { registrationsPerSec: perSec, cpuMsPerRegistration: cpuMs, fanOutMs, fanOutReached: `${matched}/${nodes}` };
  } finally {
    await fan.stop();
  }
}

export async function benchReplicas(nodes: number, concurrency: number, log: (s: string) => void): Promise<ReplicaBench> {
  // fsync on, as SQLite's store syncs too: the comparison is between durable setups.
  const db = await startPostgres({ durable: true });
  try {
    const replicated = await measureSetup(db, nodes, concurrency, log);
    const single = await measureSetup(undefined, nodes, concurrency, log);
    return { nodes, replicated, single };
  } finally {
    await db.destroy();
  }
}

/** The side-by-side table and the two verdicts. */
export function replicaMarkdown(r: ReplicaBench): string {
  const row = (name: string, s: ReplicaSetup) =>
    `| ${name} | ${s.registrationsPerSec.toFixed(0)}/s | ${s.cpuMsPerRegistration.toFixed(1)} ms | ${s.fanOutMs.toFixed(0)} ms (${s.fanOutReached}) |`;
  const fast = r.replicated.fanOutMs < 1000;
  const enough = r.replicated.registrationsPerSec >= r.single.registrationsPerSec;
  return [
    `| setup (${r.nodes} clients) | registrations | server CPU per registration | policy change → last client |`,
    '|---|---|---|---|',
    row('2 replicas on PostgreSQL (change on A, clients on B)', r.replicated),
    row('1 server on SQLite', r.single),
    '',
    `- change on A reaches ${r.nodes} clients on B < 1 s: ${r.replicated.fanOutMs.toFixed(0)} ms — ${fast ? 'PASS' : 'MISS'}`,
    `- registrations, 2 replicas on PostgreSQL ≥ 1 server on SQLite: ${r.replicated.registrationsPerSec.toFixed(0)}/s vs ${r.single.registrationsPerSec.toFixed(0)}/s — ${enough ? 'PASS' : 'MISS'}`,
  ].join('\n');
}
