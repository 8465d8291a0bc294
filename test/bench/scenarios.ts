/**
 * The bench scenarios against a real server child process: mass connect, one join, one endpoint change, a
 * tailnet-wide policy change and a mass reconnect after restart, each with the server's CPU and RSS around it.
 */
import { performance } from 'node:perf_hooks';
import type { MapResponse } from '../../src/control/wire.ts';
import { api, spawnServer, type ChildServer } from '../helpers/server.ts';
import { createFleet, waitForFrames } from './loadgen/fleet.ts';
import type { SimNode, Target } from './loadgen/node.ts';
import { blockOf, blockSize, isTagged, policyText, type PolicyKind } from './policy.ts';
import { sampleProc, type ProcSample } from './proc.ts';

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
  readonly nodes: number;
  readonly policy: PolicyKind;
  readonly scenarios: ScenarioResult[];
  /** CPU seconds the load generator itself used (it shares the machine with the server). */
  readonly loadgenCpuSec: number;
}

export interface RunOptions {
  nodes: number;
  policy: PolicyKind;
  concurrency: number;
  log: (msg: string) => void;
}

/**
 * Server env: no STUN port (other tests may hold 3478); with BENCH_PROFILE_DIR set, the server preloads the
 * CPU profiler (node refuses --cpu-prof in NODE_OPTIONS) and writes a .cpuprofile there when it exits.
 */
const serverEnv: Record<string, string> = {
  TAILPLANE_DERP_STUN_LISTEN_ADDR: '',
  ...(process.env.BENCH_PROFILE_DIR
    ? { NODE_OPTIONS: `--import ${import.meta.resolve('tsx')} --import ${import.meta.resolve('./cpu-profile.ts')}` }
    : {}),
};
const waitMs = (n: number) => 30_000 + n * 20;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : 0;
};

async function serverTarget(server: ChildServer): Promise<Target> {
  const key = (await (await fetch(`${server.url}/key?v=130`)).json()) as { publicKey: string };
  return { port: Number(new URL(server.url).port), serverPublic: Buffer.from(key.publicKey.slice('mkey:'.length), 'hex') };
}

async function must(server: ChildServer, method: string, path: string, body?: unknown) {
  const r = await api(server, method, path, body);
  if (r.status !== 200) throw new Error(`${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

/** Users, the policy and reusable pre-auth keys: per block a user key and a tag key (grouped), or one key. */
async function provision(server: ChildServer, kind: PolicyKind, blocks: number): Promise<(index: number) => string> {
  await must(server, 'POST', '/api/v1/user', { name: 'admin' });
  const text = policyText(kind, blocks, 0);
  if (kind === 'allow-all') {
    const { preAuthKey } = await must(server, 'POST', '/api/v1/preauthkey', { user: '1', reusable: true });
    return () => preAuthKey.key;
  }
  const keys: { user: string; tag: string }[] = [];
  for (let k = 0; k < blocks; k++) {
    const { user } = await must(server, 'POST', '/api/v1/user', { name: `u${k}` });
    keys.push({ user: '', tag: '' });
    keys[k]!.user = (await must(server, 'POST', '/api/v1/preauthkey', { user: String(user.id), reusable: true })).preAuthKey.key;
  }
  await must(server, 'PUT', '/api/v1/policy', { policy: text });
  for (let k = 0; k < blocks; k++) {
    keys[k]!.tag = (await must(server, 'POST', '/api/v1/preauthkey', { reusable: true, aclTags: [`tag:t${k}`] })).preAuthKey.key;
  }
  return (i) => (isTagged(i) ? keys[blockOf(i)]!.tag : keys[blockOf(i)]!.user);
}

/** Waits until no node has received a delta for `quietMs` (keep-alives do not count: they never stop). */
async function settle(nodes: readonly SimNode[], quietMs = 500, maxMs = 60_000): Promise<void> {
  const total = () => nodes.reduce((s, n) => s + n.metrics.deltas.length, 0);
  const end = performance.now() + maxMs;
  let last = -1;
  while (performance.now() < end) {
    const now = total();
    if (now === last) return;
    last = now;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

const peerKeyIn = (m: MapResponse, key: string) => m.PeersChanged?.some((p) => p.Key === key) ?? false;

export async function runScenarios(opts: RunOptions): Promise<RunResult> {
  const { nodes: n, policy, log } = opts;
  const blocks = Math.max(1, Math.ceil((n + 1) / blockSize));
  const cpu0 = process.cpuUsage();
  let server = await spawnServer({ env: serverEnv });
  const results: ScenarioResult[] = [];
  const measure = async (name: string, body: () => Promise<Omit<ScenarioResult, 'name' | 'server'>>) => {
    const pid = server.process.pid!;
    const before: ProcSample = sampleProc(pid);
    const r = await body();
    const after = sampleProc(server.process.pid!);
    // After a restart the process is new, so all of its CPU time belongs to this scenario.
    const cpuSec = server.process.pid === pid ? after.cpuSec - before.cpuSec : after.cpuSec;
    const s = { ...r, name, server: { cpuSec, rssMiB: after.rssMiB, peakRssMiB: after.peakRssMiB } };
    results.push(s);
    log(`  ${name}: ${r.ms.toFixed(0)} ms (affected ${r.affected}, missing ${r.missing}) ${JSON.stringify(r.extra)} server cpu ${s.server.cpuSec.toFixed(2)} s rss ${after.rssMiB.toFixed(0)} MiB`);
  };
  const keyFor = await provision(server, policy, blocks);
  const fleet = createFleet(await serverTarget(server), { concurrency: opts.concurrency });
  try {
    await measure('mass connect', async () => {
      const t0 = performance.now();
      const joined = await Promise.allSettled(Array.from({ length: n }, (_, i) => fleet.join(i, keyFor(i))));
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
        const pending = fleet.join(idx, keyFor(0));
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
        (m) => m.PacketFilter !== undefined,
        () => must(server, 'PUT', '/api/v1/policy', { policy: policyText(policy, blocks, 1) }),
        waitMs(n) * 2,
      );
      await settle(fleet.nodes);
      return { ms: a.last - t0, affected: fleet.nodes.length, missing: a.missing, extra: {} };
    });

    await measure('restart + reconnect', async () => {
      await server.stop();
      const retries0 = fleet.retries();
      const t0 = performance.now();
      server = await spawnServer({ dataDir: server.dataDir, env: serverEnv });
      const listening = performance.now();
      Object.assign(fleet.target, await serverTarget(server));
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
  return { nodes: n, policy, scenarios: results, loadgenCpuSec: (cpu.user + cpu.system) / 1e6 };
}
