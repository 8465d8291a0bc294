/**
 * The bench scenarios against a real server child process (tailplane, or Headscale for the comparison; see
 * servers/): mass connect, one join, one endpoint change, a tailnet-wide policy change, a wave of ephemeral
 * churn and a mass reconnect after restart, each with the server's CPU and RSS around it.
 */
import { performance } from 'node:perf_hooks';
import type { MapResponse } from '../../src/control/wire.ts';
import { createFleet, waitForFrames } from './loadgen/fleet.ts';
import type { SimNode } from './loadgen/node.ts';
import { blockOf, blockSize, policyText, type PolicyKind } from './policy.ts';
import { sampleProc, type ProcSample } from './proc.ts';
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

/** Waits until no node has received a delta for `quietMs` (keep-alives do not count: they never stop). */
async function settle(nodes: readonly SimNode[], quietMs = 500, maxMs = 60_000): Promise<void> {
  const total = () => nodes.reduce((s, n) => s + n.metrics.deltas, 0);
  const end = performance.now() + maxMs;
  let last = -1;
  while (performance.now() < end) {
    const now = total();
    if (now === last) return;
    last = now;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

/** The node learnt of peer `key`: in a delta, or in a full peer list (a server may resend the whole list). */
const peerKeyIn = (m: MapResponse, key: string) => (m.PeersChanged ?? m.Peers)?.some((p) => p.Key === key) ?? false;

/**
 * The frame carries a new packet filter: `PacketFilter`, or the keyed `PacketFilters` of capability version
 * 81+, which Headscale sends (wire.ts does not model it; clients accept either).
 */
const hasPacketFilter = (m: MapResponse) => m.PacketFilter !== undefined || (m as { PacketFilters?: unknown }).PacketFilters !== undefined;

/**
 * When a node learnt of each removed peer id and each added peer key, from now on. A full peer list (a re-poll's
 * first map) tells both: a peer it lists was added, and a watched id it leaves out was removed. A peer sent under
 * a removed peer's id with another key replaces it, as the client sees it (a server that reuses ids does that).
 */
function watchPeers(node: SimNode, gone: ReadonlyMap<number, string>) {
  const removed = new Map<number, number>();
  const added = new Map<string, number>();
  const off = node.onFrame(({ at, map }) => {
    for (const id of map.PeersRemoved ?? []) if (!removed.has(id)) removed.set(id, at);
    for (const p of map.PeersChanged ?? map.Peers ?? []) {
      if (!added.has(p.Key)) added.set(p.Key, at);
      if (gone.has(p.ID) && gone.get(p.ID) !== p.Key && !removed.has(p.ID)) removed.set(p.ID, at);
    }
    if (!map.Peers) return;
    const listed = new Set(map.Peers.map((p) => p.ID));
    for (const id of gone.keys()) if (!listed.has(id) && !removed.has(id)) removed.set(id, at);
  });
  return { removed, added, off };
}

export async function runScenarios(opts: RunOptions): Promise<RunResult> {
  const { nodes: n, policy, log } = opts;
  const blocks = Math.max(1, Math.ceil((n + 1) / blockSize));
  const cpu0 = process.cpuUsage();
  const server = await startBenchServer(opts.server ?? 'tailplane');
  const results: ScenarioResult[] = [];
  const measure = async (name: string, body: () => Promise<Omit<ScenarioResult, 'name' | 'server'>>) => {
    const pid = server.pid();
    const before: ProcSample = sampleProc(pid);
    const repolls0 = repolls();
    const frames0 = fleet.frames();
    const r = await body();
    const after = sampleProc(server.pid());
    // After a restart the process is new, so all of its CPU time belongs to this scenario.
    const cpuSec = server.pid() === pid ? after.cpuSec - before.cpuSec : after.cpuSec;
    // Streams the server ended and nodes re-opened: shown only when it happened, which is a finding in itself.
    // Map frames the fleet received (keep-alives included): what batching saves shows here.
    const counted = { ...r.extra, framesReceived: fleet.frames() - frames0 };
    const extra = repolls() > repolls0 ? { ...counted, streamRepolls: repolls() - repolls0 } : counted;
    const s = { ...r, extra, name, server: { cpuSec, rssMiB: after.rssMiB, peakRssMiB: after.peakRssMiB } };
    results.push(s);
    log(`  ${name}: ${r.ms.toFixed(0)} ms (affected ${r.affected}, missing ${r.missing}) ${JSON.stringify(extra)} server cpu ${s.server.cpuSec.toFixed(2)} s rss ${after.rssMiB.toFixed(0)} MiB`);
  };
  const keys = await server.provision(policy, blocks);
  const fleet = createFleet(await server.target(), { concurrency: opts.concurrency });
  const repolls = () => fleet.nodes.reduce((sum, x) => sum + x.metrics.repolls, 0);
  try {
    await measure('mass connect', async () => {
      const t0 = performance.now();
      const joined = await Promise.allSettled(Array.from({ length: n }, (_, i) => fleet.join(i, keys.node(i))));
      const failed = joined.filter((j) => j.status === 'rejected').length;
      if (fleet.nodes.length === 0) throw new Error('no node could connect');
      const regDone = Math.max(...fleet.nodes.map((x) => x.metrics.firstMapAt! - x.metrics.firstMapMs!));
      const first = fleet.nodes.map((x) => x.metrics.firstMapMs!);
      const r = {
        ms: Math.max(...fleet.nodes.map((x) => x.metrics.firstMapAt!)) - t0,
        affected: n,
        missing: failed,
        extra: {
          registrationsPerSec: fleet.nodes.length / ((regDone - t0) / 1000),
          firstMapP50Ms: pct(first, 50),
          firstMapP99Ms: pct(first, 99),
          connectRetries: fleet.retries(),
        },
      };
      const t1 = performance.now();
      await settle(fleet.nodes);
      const avgPeers = fleet.nodes.reduce((s, x) => s + x.peerCount(), 0) / fleet.nodes.length;
      const mib = fleet.nodes.reduce((s, x) => s + x.metrics.bytes, 0) / 2 ** 20;
      return { ...r, extra: { ...r.extra, settleMs: performance.now() - t1, avgPeersAfter: avgPeers, receivedMiB: mib } };
    });
    // Nodes that must learn about node i (block 0 for the joiner, which uses block 0's user key).
    const members = (i: number, block = blockOf(i)) =>
      fleet.nodes.filter((x) => x.index !== i && (policy === 'allow-all' || blockOf(x.index) === block));

    await measure('join (fan-out)', async () => {
      const idx = n;
      const affected = members(idx, 0);
      let key = '';
      const t0 = performance.now();
      const a = await waitForFrames(affected, (m) => peerKeyIn(m, key), async () => {
        const pending = fleet.join(idx, keys.node(0));
        key = fleet.nodes.at(-1)!.nodeKey;
        await pending;
      }, waitMs(n));
      const joined = fleet.nodes.at(-1)!;
      await settle(fleet.nodes);
      return { ms: a.last - t0, affected: affected.length, missing: a.missing, extra: { joinerFirstMapMs: joined.metrics.firstMapAt! - t0 } };
    });

    await measure('endpoint change', async () => {
      const mover = fleet.nodes[0]!;
      const affected = members(0);
      const id = mover.id();
      const t0 = performance.now();
      const a = await waitForFrames(
        affected,
        (m) => (m.PeersChangedPatch?.some((p) => p.NodeID === id && p.Endpoints) ?? false) || peerKeyIn(m, mover.nodeKey),
        () => mover.liteUpdate(),
        waitMs(n),
      );
      await settle(fleet.nodes);
      return { ms: a.last - t0, affected: affected.length, missing: a.missing, extra: {} };
    });

    await measure('policy change', async () => {
      const t0 = performance.now();
      const a = await waitForFrames(
        fleet.nodes,
        hasPacketFilter,
        () => server.setPolicy(policyText(policy, blocks, 1)!),
        waitMs(n) * 2,
      );
      await settle(fleet.nodes);
      return { ms: a.last - t0, affected: fleet.nodes.length, missing: a.missing, extra: {} };
    });

    // 5 % of the tailnet is ephemeral (CI runners, short-lived VMs); one wave replaces all of them at once.
    const churnCount = Math.max(1, Math.round(n * 0.05));
    // Even indexes spread over the blocks: user-owned nodes, since the ephemeral keys belong to block users.
    const churnIndex = (k: number) => Math.floor((k * n) / churnCount) & ~1;
    const wave = (w: number) =>
      Promise.all(Array.from({ length: churnCount }, (_, k) => fleet.join(churnIndex(k), keys.ephemeral(churnIndex(k)), `eph-${w}-${k}`)));
    let ephemerals = await wave(0);
    await settle(fleet.nodes);

    await measure('ephemeral churn (5 %)', async () => {
      const leaving = ephemerals;
      const stayers = fleet.nodes.filter((x) => !leaving.includes(x));
      const gone = new Map(leaving.map((l) => [l.id()!, l.nodeKey]));
      const seen = stayers.map((x) => watchPeers(x, gone));
      const t0 = performance.now();
      const [, joined] = await Promise.all([Promise.all(leaving.map((x) => fleet.leave(x))), wave(1)]);
      ephemerals = joined;
      // Every stayer must see each leaver of its block removed and each joiner of its block added.
      const sees = (a: SimNode, b: SimNode) => policy === 'allow-all' || blockOf(a.index) === blockOf(b.index);
      const wants = stayers.map((x) => ({ gone: leaving.filter((l) => sees(x, l)).map((l) => l.id()!), added: joined.filter((j) => sees(x, j)).map((j) => j.nodeKey) }));
      /** Arrival times of every update stayer i must get, undefined for one that has not arrived (yet). */
      const arrivals = (i: number) => [...wants[i]!.gone.map((id) => seen[i]!.removed.get(id)), ...wants[i]!.added.map((k) => seen[i]!.added.get(k))];
      const done = (i: number) => arrivals(i).every((at) => at !== undefined);
      const waitAll = async (until: number) => {
        while (performance.now() < until && !stayers.every((_, i) => done(i))) await new Promise((r) => setTimeout(r, 50));
      };
      const deadline = performance.now() + waitMs(n);
      await waitAll(deadline);
      const missing = stayers.filter((_, i) => !done(i)).length;
      // Lost or only late? Updates missing at the deadline get as long again (and until the fleet is quiet):
      // those that arrive then are late, those that never do are lost.
      if (missing) await waitAll(performance.now() + waitMs(n));
      await settle(fleet.nodes);
      for (const w of seen) w.off();
      const times = stayers.flatMap((_, i) => arrivals(i));
      const arrived = times.filter((at): at is number => at !== undefined);
      const last = Math.max(...arrived);
      const late = arrived.filter((at) => at > deadline).length;
      const lost = times.length - arrived.length;
      const verdict: Record<string, number> = missing ? { lateUpdates: late, lostUpdates: lost, lastArrivalMs: last - t0 } : {};
      return { ms: (missing ? deadline : last) - t0, affected: stayers.length, missing, extra: { left: leaving.length, joined: joined.length, updates: times.length, ...verdict } };
    });

    await measure('restart + reconnect', async () => {
      await server.stop();
      const retries0 = fleet.retries();
      const t0 = performance.now();
      await server.start();
      const listening = performance.now();
      Object.assign(fleet.target, await server.target());
      const settled = await Promise.allSettled(fleet.nodes.map((x) => fleet.reconnect(x)));
      const ok = fleet.nodes.filter((_, i) => settled[i]!.status === 'fulfilled');
      const last = Math.max(...ok.map((x) => x.metrics.firstMapAt!));
      await settle(fleet.nodes);
      return { ms: last - t0, affected: fleet.nodes.length, missing: fleet.nodes.length - ok.length, extra: { serverStartMs: listening - t0, reconnectMs: last - listening, connectRetries: fleet.retries() - retries0 } };
    });
  } finally {
    fleet.close();
    await server.stop();
  }
  const cpu = process.cpuUsage(cpu0);
  return { server: server.name, nodes: n, policy, scenarios: results, loadgenCpuSec: (cpu.user + cpu.system) / 1e6 };
}
