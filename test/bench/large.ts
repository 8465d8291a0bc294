/**
 * The 50,000-node row of issue 20 (`--large-nodes 50000`). One process may hold 20,000 open files on the bench
 * machine, below one connection per client, so this tailnet is served the way a deployment of that size would
 * be: by several `tailplane serve` replicas on one PostgreSQL 15 (README, "High availability"), node i dialing
 * replica i % R as a round-robin load balancer would, each replica's clients driven by a gofleet of their own.
 * Every replica holds the whole tailnet in memory and serves its own clients' streams.
 *
 * Scenarios, in the grouped layout: mass connect; a join's fan-out to its 99 group peers (spread over every
 * replica); a tailnet-wide policy change made through the first replica, until the last client of any replica
 * has the new packet filter. Server CPU is summed over the replicas, RSS is the largest replica's.
 */
import { startPostgres } from '../helpers/postgres.ts';
import { api, type ChildServer } from '../helpers/server.ts';
import { now, startFleet, type Fleet, type FleetNode } from './loadgen/fleet.ts';
import { blockOf, blockSize, policyText } from './policy.ts';
import { startReplicas } from './replicas.ts';
import { scenarioMeter, settle, waitFor, type RunResult, type ScenarioResult } from './scenarios.ts';
import { keyTarget } from './servers/server.ts';
import { provision } from './servers/tailplane.ts';

export interface LargeOptions {
  readonly nodes: number;
  readonly replicas: number;
  readonly concurrency: number;
  readonly log: (msg: string) => void;
}

/** The heap a replica of a 50,000-node tailnet may need (README, "Large tailnets"). */
const nodeOptions = '--max-old-space-size=8192';
/** How long a replica may take to read what another one wrote: it reads the change log at least every 2 s. */
const catchUpMs = 3000;

export async function runLarge(opts: LargeOptions): Promise<RunResult> {
  const { nodes: n, replicas: count, log } = opts;
  const blocks = Math.max(1, Math.ceil((n + 1) / blockSize));
  const cpu0 = process.cpuUsage();
  // fsync on, as SQLite's store syncs too.
  const db = await startPostgres({ durable: true });
  let servers: ChildServer[] = [];
  let fleets: Fleet[] = [];
  const scenarios: ScenarioResult[] = [];
  let loadgenCpuSec = 0;
  try {
    servers = await startReplicas(db, 'large', count, nodeOptions);
    const keys = await provision(servers[0]!, 'grouped', blocks);
    await new Promise((r) => setTimeout(r, catchUpMs));
    fleets = await Promise.all(servers.map(async (s) => startFleet(await keyTarget(s.url), { concurrency: Math.ceil(opts.concurrency / count) })));
    const all = () => fleets.flatMap((f) => f.nodes);
    const measure = scenarioMeter(() => servers.map((s) => s.process.pid!), () => fleets, scenarios, log);

    await measure('mass connect', async () => {
      const t0 = now();
      const joined = await Promise.allSettled(Array.from({ length: n }, (_, i) => fleets[i % count]!.join(i, keys.node(i))));
      const failed = joined.filter((j) => j.status === 'rejected');
      if (failed.length === n) throw new Error(`no node could connect: ${(failed[0] as PromiseRejectedResult).reason}`);
      const ok = all();
      const regDone = ok.reduce((m, x) => Math.max(m, x.firstMapAt - x.firstMapMs), 0);
      const ms = ok.reduce((m, x) => Math.max(m, x.firstMapAt), 0) - t0;
      const t1 = now();
      await settle(fleets);
      return { ms, affected: n, missing: failed.length, extra: { replicas: count, registrationsPerSec: ok.length / ((regDone - t0) / 1000), settleMs: now() - t1 } };
    });

    await measure('join (fan-out)', async () => {
      const affected = all().filter((x) => blockOf(x.index) === 0);
      const joiner = await fleets[0]!.prepare(n);
      const t0 = now();
      const a = await waitFor(fleets, (f) => [{ nodes: members(f, affected), added: [joiner.nodeKey] }], () => fleets[0]!.start(joiner, keys.node(0)), 60_000);
      await settle(fleets);
      return { ms: a.last - t0, affected: affected.length, missing: a.missing, extra: { joinerFirstMapMs: joiner.firstMapAt - t0 } };
    });

    await measure('policy change', async () => {
      const everyone = all();
      const t0 = now();
      const change = () => api(servers[0]!, 'PUT', '/api/v1/policy', { policy: policyText('grouped', blocks, 1) });
      const a = await waitFor(fleets, (f) => [{ nodes: f.nodes, filter: true }], change, 120_000);
      await settle(fleets);
      return { ms: a.last - t0, affected: everyone.length, missing: a.missing, extra: {} };
    });
  } finally {
    loadgenCpuSec = fleets.reduce((sum, f) => sum + f.cpuSec(), 0);
    await Promise.all(fleets.map((f) => f.close()));
    await Promise.all(servers.map((s) => s.stop()));
    await db.destroy();
  }
  const cpu = process.cpuUsage(cpu0);
  // gofleets' CPU plus this driver's.
  return { server: `tailplane, ${count} replicas on PostgreSQL 15`, nodes: n, policy: 'grouped', scenarios, loadgenCpuSec: loadgenCpuSec + (cpu.user + cpu.system) / 1e6 };
}

const members = (f: Fleet, nodes: readonly FleetNode[]) => nodes.filter((x) => f.nodes.includes(x));
