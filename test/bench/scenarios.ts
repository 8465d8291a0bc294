/**
 * The bench scenarios against a real server child process (tailplane, or Headscale for the comparison; see
 * servers/): mass connect, one join, one endpoint change, a tailnet-wide policy change, a wave of ephemeral
 * churn and a mass reconnect after restart, each with the server's CPU and RSS around it.
 */
import { now, startFleet, type Fleet, type FleetNode, type WatchGroup } from './loadgen/fleet.ts';
import { blockOf, blockSize, policyText, type PolicyKind } from './policy.ts';
import { sampleProc } from './proc.ts';
import { startBenchServer, type ServerKind } from './servers/index.ts';

export interface ScenarioResult {
  readonly name: string;
  /** The headline latency of the scenario, in ms. */
  readonly ms: number;
  /** Nodes that had to see the effect, and how many never did before the timeout. */
  readonly affected: number;
  readonly missing: number;
  readonly extra: Record<string, number>;
  readonly server: { cpuSec: number; rssMiB: number; peakRssMiB: number };
}

export interface RunResult {
  /** The server under test: "tailplane" or "headscale v0.29.2". */
  readonly server: string;
  readonly nodes: number;
  readonly policy: PolicyKind;
  readonly scenarios: ScenarioResult[];
  /** CPU seconds the load generator itself used (it shares the machine with the server). */
  readonly loadgenCpuSec: number;
}

export interface RunOptions {
  /** The server to run against; tailplane unless comparing. */
  server?: ServerKind;
  nodes: number;
  policy: PolicyKind;
  concurrency: number;
  log: (msg: string) => void;
}

const waitMs = (n: number) => 30_000 + n * 20;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : 0;
};

/** Waits until no node of the fleets has received a delta for `quietMs` (keep-alives do not count: they never stop). */
export async function settle(fleets: readonly Fleet[], quietMs = 500, maxMs = 60_000): Promise<void> {
  const end = now() + maxMs;
  let last = -1;
  while (now() < end) {
    const deltas = (await Promise.all(fleets.map((f) => f.totals()))).reduce((sum, t) => sum + t.deltas, 0);
    if (deltas === last) return;
    last = deltas;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

/**
 * Watches each fleet's `groupsOf`, runs `trigger`, and waits up to `timeoutMs` for every node to see what it
 * must: when the last one did, and how many nodes had not by the timeout.
 */
export async function waitFor(fleets: readonly Fleet[], groupsOf: (f: Fleet) => WatchGroup[], trigger: () => Promise<unknown>, timeoutMs: number): Promise<{ last: number; missing: number }> {
  const watches = await Promise.all(fleets.map((f) => f.watch(groupsOf(f))));
  try {
    await trigger();
    const deadline = now() + timeoutMs;
    await Promise.all(watches.map((w) => w.wait(deadline)));
    const a = (await Promise.all(watches.map((w) => w.arrivals()))).flat();
    const last = a.reduce((m, x) => Math.max(m, x.last), 0);
    return { last: last || now(), missing: a.filter((x) => x.arrived < x.n).length };
  } finally {
    await Promise.all(watches.map((w) => w.close()));
  }
}

/** A scenario's body: what it measured, without the CPU, RSS and frames the meter adds. */
type ScenarioBody = () => Promise<Omit<ScenarioResult, 'name' | 'server'>>;

/**
 * Runs scenarios and records each in `results` with what it cost around it: the server processes' CPU (summed)
 * and RSS (the largest), the frames the fleets received and their own CPU. `pids` are read before and after, so
 * a scenario that restarts a server counts all of the new process's CPU.
 */
export function scenarioMeter(pids: () => number[], fleets: () => readonly Fleet[], results: ScenarioResult[], log: (msg: string) => void) {
  const totals = async () => {
    const all = await Promise.all(fleets().map((f) => f.totals()));
    return { frames: all.reduce((n, t) => n + t.frames, 0), repolls: all.reduce((n, t) => n + t.repolls, 0) };
  };
  const loadgenCpu = () => fleets().reduce((sum, f) => sum + f.cpuSec(), 0);
  return async (name: string, body: ScenarioBody): Promise<void> => {
    const pidsBefore = pids();
    const before = pidsBefore.map(sampleProc);
    const [t0, loadgen0] = [await totals(), loadgenCpu()];
    const r = await body();
    const pidsAfter = pids();
    const after = pidsAfter.map(sampleProc);
    const t1 = await totals();
    // After a restart the process is new, so all of its CPU time belongs to this scenario.
    const cpuSec = after.reduce((sum, a, i) => sum + a.cpuSec - (pidsAfter[i] === pidsBefore[i] ? before[i]!.cpuSec : 0), 0);
    // The two share the machine: a scenario whose server and load generator CPU together near the cores it has
    // is bound by the machine, not by waits. Map frames the fleets received (keep-alives included): what
    // batching saves shows here.
    const counted = { ...r.extra, framesReceived: t1.frames - t0.frames, loadgenCpuSec: Math.round((loadgenCpu() - loadgen0) * 100) / 100 };
    // Streams the server ended and nodes re-opened: shown only when it happened, which is a finding in itself.
    const extra = t1.repolls > t0.repolls ? { ...counted, streamRepolls: t1.repolls - t0.repolls } : counted;
    const server = { cpuSec, rssMiB: Math.max(...after.map((a) => a.rssMiB)), peakRssMiB: Math.max(...after.map((a) => a.peakRssMiB)) };
    results.push({ ...r, extra, name, server });
    const rss = after.length === 1 ? `rss ${server.rssMiB.toFixed(0)} MiB` : `rss/peak per replica ${after.map((a) => `${a.rssMiB.toFixed(0)}/${a.peakRssMiB.toFixed(0)}`).join(', ')} MiB`;
    log(`  ${name}: ${r.ms.toFixed(0)} ms (affected ${r.affected}, missing ${r.missing}) ${JSON.stringify(extra)} server cpu ${cpuSec.toFixed(2)} s, ${rss}`);
  };
}

/** Nodes by key: `by` of each node. */
function groupBy<K>(nodes: readonly FleetNode[], by: (x: FleetNode) => K): Map<K, FleetNode[]> {
  const m = new Map<K, FleetNode[]>();
  for (const x of nodes) {
    const k = by(x);
    const list = m.get(k);
    if (list) list.push(x);
    else m.set(k, [x]);
  }
  return m;
}

export async function runScenarios(opts: RunOptions): Promise<RunResult> {
  const { nodes: n, policy, log } = opts;
  const blocks = Math.max(1, Math.ceil((n + 1) / blockSize));
  const cpu0 = process.cpuUsage();
  const server = await startBenchServer(opts.server ?? 'tailplane');
  const results: ScenarioResult[] = [];
  const keys = await server.provision(policy, blocks);
  const fleet = await startFleet(await server.target(), { concurrency: opts.concurrency });
  const measure = scenarioMeter(() => [server.pid()], () => [fleet], results, log);
  let loadgenCpuSec = 0;
  try {
    await measure('mass connect', async () => {
      const t0 = now();
      const retries0 = (await fleet.totals()).retries;
      const joined = await Promise.allSettled(Array.from({ length: n }, (_, i) => fleet.join(i, keys.node(i))));
      const failed = joined.filter((j) => j.status === 'rejected').length;
      if (fleet.nodes.length === 0) throw new Error(`no node could connect: ${(joined[0] as PromiseRejectedResult).reason}`);
      const regDone = fleet.nodes.reduce((m, x) => Math.max(m, x.firstMapAt - x.firstMapMs), 0);
      const first = fleet.nodes.map((x) => x.firstMapMs);
      const r = {
        ms: fleet.nodes.reduce((m, x) => Math.max(m, x.firstMapAt), 0) - t0,
        affected: n,
        missing: failed,
        extra: {
          registrationsPerSec: fleet.nodes.length / ((regDone - t0) / 1000),
          firstMapP50Ms: pct(first, 50),
          firstMapP99Ms: pct(first, 99),
          connectRetries: (await fleet.totals()).retries - retries0,
        },
      };
      const t1 = now();
      await settle([fleet]);
      const stats = await fleet.stats();
      const avgPeers = stats.reduce((s, x) => s + x.peers, 0) / stats.length;
      const mib = (await fleet.totals()).bytes / 2 ** 20;
      return { ...r, extra: { ...r.extra, settleMs: now() - t1, avgPeersAfter: avgPeers, receivedMiB: mib } };
    });
    // Nodes that must learn about node i (block 0 for the joiner, which uses block 0's user key).
    const members = (i: number, block = blockOf(i)) =>
      fleet.nodes.filter((x) => x.index !== i && (policy === 'allow-all' || blockOf(x.index) === block));

    await measure('join (fan-out)', async () => {
      const affected = members(n, 0);
      const joiner = await fleet.prepare(n);
      const t0 = now();
      const a = await waitFor([fleet], () => [{ nodes: affected, added: [joiner.nodeKey] }], () => fleet.start(joiner, keys.node(0)), waitMs(n));
      await settle([fleet]);
      return { ms: a.last - t0, affected: affected.length, missing: a.missing, extra: { joinerFirstMapMs: joiner.firstMapAt - t0 } };
    });

    await measure('endpoint change', async () => {
      const mover = fleet.nodes[0]!;
      const affected = members(mover.index);
      const t0 = now();
      const a = await waitFor([fleet], () => [{ nodes: affected, patch: { id: mover.id, key: mover.nodeKey } }], () => fleet.liteUpdate(mover), waitMs(n));
      await settle([fleet]);
      return { ms: a.last - t0, affected: affected.length, missing: a.missing, extra: {} };
    });

    await measure('policy change', async () => {
      const t0 = now();
      const a = await waitFor([fleet], () => [{ nodes: fleet.nodes, filter: true }], () => server.setPolicy(policyText(policy, blocks, 1)!), waitMs(n) * 2);
      await settle([fleet]);
      return { ms: a.last - t0, affected: fleet.nodes.length, missing: a.missing, extra: {} };
    });

    // 5 % of the tailnet is ephemeral (CI runners, short-lived VMs); one wave replaces all of them at once.
    const churnCount = Math.max(1, Math.round(n * 0.05));
    // Even indexes spread over the blocks: user-owned nodes, since the ephemeral keys belong to block users.
    const churnIndex = (k: number) => Math.floor((k * n) / churnCount) & ~1;
    const prepareWave = (w: number) => Promise.all(Array.from({ length: churnCount }, (_, k) => fleet.prepare(churnIndex(k), `eph-${w}-${k}`)));
    /** Joins a wave's nodes; those that could not get in (after retries) are returned apart. */
    const startWave = async (wave: FleetNode[]) => {
      const r = await Promise.allSettled(wave.map((x) => fleet.start(x, keys.ephemeral(x.index))));
      return { joined: wave.filter((_, i) => r[i]!.status === 'fulfilled'), failed: wave.filter((_, i) => r[i]!.status === 'rejected') };
    };
    let ephemerals = (await startWave(await prepareWave(0))).joined;
    await settle([fleet]);

    await measure('ephemeral churn (5 %)', async () => {
      const leaving = ephemerals;
      const joining = await prepareWave(1);
      const stayers = fleet.nodes.filter((x) => !leaving.includes(x));
      // Every stayer must see each leaver of its block removed and each joiner of its block added.
      const block = (x: FleetNode) => (policy === 'allow-all' ? 0 : blockOf(x.index));
      const groups = [...groupBy(stayers, block)].map(([b, nodes]) => ({
        nodes,
        removed: leaving.filter((l) => block(l) === b).map((l) => ({ id: l.id, key: l.nodeKey })),
        added: joining.filter((j) => block(j) === b).map((j) => j.nodeKey),
      }));
      const w = await fleet.watch(groups);
      const retries0 = (await fleet.totals()).retries;
      const t0 = now();
      const [left, wave] = await Promise.all([Promise.allSettled(leaving.map((x) => fleet.leave(x))), startWave(joining)]);
      // A client that never got in (or out) is the load's failure, not an update the server lost: not waited for.
      const stuck = leaving.filter((_, i) => left[i]!.status === 'rejected');
      if (wave.failed.length || stuck.length) await w.drop({ keys: wave.failed.map((x) => x.nodeKey), ids: stuck.map((x) => x.id) });
      ephemerals = wave.joined;
      const deadline = now() + waitMs(n);
      const complete = await w.wait(deadline);
      const missing = complete ? 0 : (await w.arrivals()).filter((x) => x.arrived < x.n).length;
      // Lost or only late? Updates missing at the deadline get as long again (and until the fleet is quiet):
      // those that arrive then are late, those that never do are lost.
      if (missing) await w.wait(now() + waitMs(n));
      await settle([fleet]);
      const a = await w.arrivals(deadline);
      await w.close();
      const sum = (f: (x: (typeof a)[number]) => number) => a.reduce((s, x) => s + f(x), 0);
      const updates = sum((x) => x.n);
      const last = a.reduce((m, x) => Math.max(m, x.last), 0);
      const verdict: Record<string, number> = missing ? { lateUpdates: sum((x) => x.after), lostUpdates: updates - sum((x) => x.arrived), lastArrivalMs: last - t0 } : {};
      const failures: Record<string, number> = wave.failed.length || stuck.length ? { joinFailures: wave.failed.length, leaveFailures: stuck.length } : {};
      // How much of the wave was the joins themselves getting in (their first maps), not the fan-out after them.
      const joinMs = wave.joined.map((x) => x.firstMapAt - t0).sort((a, b) => a - b);
      const lastJoinMs = joinMs.at(-1) ?? 0;
      const medianJoinMs = joinMs[joinMs.length >> 1] ?? 0;
      const connectRetries = (await fleet.totals()).retries - retries0;
      const extra = { left: leaving.length - stuck.length, joined: wave.joined.length, medianJoinMs, lastJoinMs, connectRetries, updates, ...failures, ...verdict };
      return { ms: (missing ? deadline : last) - t0, affected: stayers.length, missing, extra };
    });

    await measure('restart + reconnect', async () => {
      await server.stop();
      const retries0 = (await fleet.totals()).retries;
      const t0 = now();
      await server.start();
      const listening = now();
      await fleet.setTarget(await server.target());
      const settled = await Promise.allSettled(fleet.nodes.map((x) => fleet.reconnect(x)));
      const ok = fleet.nodes.filter((_, i) => settled[i]!.status === 'fulfilled');
      const last = ok.reduce((m, x) => Math.max(m, x.firstMapAt), 0);
      await settle([fleet]);
      const retries = (await fleet.totals()).retries - retries0;
      return { ms: last - t0, affected: fleet.nodes.length, missing: fleet.nodes.length - ok.length, extra: { serverStartMs: listening - t0, reconnectMs: last - listening, connectRetries: retries } };
    });
  } finally {
    loadgenCpuSec = fleet.cpuSec();
    await fleet.close();
    await server.stop();
  }
  const cpu = process.cpuUsage(cpu0);
  // gofleet's CPU plus this driver's (which also provisions the server and samples it).
  return { server: server.name, nodes: n, policy, scenarios: results, loadgenCpuSec: loadgenCpuSec + (cpu.user + cpu.system) / 1e6 };
}
