/**
 * The mapper's CPU cost without the network: a real tailnet (SQLite file), the live policy view and the mapper
 * with sessions that only count the bytes they are sent, through mass connect, a restart (the store reopened,
 * every stream opened again), 5 % churn and a policy change. Less noisy than `npm run bench` on a busy machine:
 * it reports this process's CPU time per phase, not latencies.
 *   node --expose-gc --import tsx test/bench/mapper-cpu.ts [--nodes 1000] [--policy allow-all|grouped] [--src ../../src] [--profile-dir D] [--heap-profile-dir D]
 * (--src points at another checkout's src/ to compare before and after a change; --profile-dir writes a .cpuprofile
 * per phase, e.g. D/policy-change.cpuprofile, for test/bench/profile-summary.ts; --heap-profile-dir a .heapprofile
 * per phase of what it allocated, collected or not, for Chrome DevTools' Memory tab.)
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session as Inspector } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { flushSettleMs, loadSrc } from './src-modules.ts';
import { blockOf, isTagged, policyText, type PolicyKind } from './policy.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    policy: { type: 'string', default: 'allow-all' },
    src: { type: 'string', default: join(import.meta.dirname, '../../src') },
    'profile-dir': { type: 'string' },
    'heap-profile-dir': { type: 'string' },
  },
});
const n = Number(values.nodes);
const kind = values.policy as PolicyKind;
const { openSqliteStore, createTailnet, createPolicyView, createPrimaryRoutes, createMapper, createFrameEncoder } = await loadSrc(values.src);

const key = (prefix: string) => `${prefix}:${randomBytes(32).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'tailplane-mapper-cpu-'));
const file = join(dir, 'tailplane.sqlite');
const dns = { magicDns: true, overrideLocalDns: true, baseDomain: 'bench.example', nameservers: [], splitDns: {}, searchDomains: [], extraRecords: [] };
const options = { prefixes: { v4: '100.64.0.0/10', v6: 'fd7a:115c:a1e0::/48', allocation: 'sequential' }, defaultDns: dns, expirySeconds: 180 * 86400 };
const frames = createFrameEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Frames and bytes every session was sent, across restarts. */
const sent = { frames: 0, bytes: 0 };

/** A server's control side over a store: tailnet, policy view, mapper; sessions count frames and bytes. */
function server() {
  const store = openSqliteStore(file);
  const t = createTailnet(store, options);
  const policy = createPolicyView(t, { serverUrl: 'https://control.example' });
  const primary = createPrimaryRoutes();
  const derp = { Regions: { 999: { RegionID: 999, RegionCode: 'x', RegionName: 'x', Nodes: [] } } };
  const mapper = createMapper({ tailnet: t, policy, primary, frames, derpMap: () => derp, primaryRoutes: (id: number) => primary.routesOf(id), certificates: false });
  // Before the shared encoding, sessions were handed MapResponses to encode (map.ts did it per stream).
  const bytesOf = (x: unknown) => (Buffer.isBuffer(x) ? x : frames.encode(x)).length;
  const open = async (nodeId: number) => {
    const first = await mapper.open({ nodeId, send: (x: unknown) => ((sent.frames += 1), (sent.bytes += bytesOf(x))), end: () => {} });
    sent.bytes += bytesOf(first);
  };
  return { store, t, mapper, open };
}

const users: number[] = [];
let s = server();
const blocks = Math.ceil((n + 1) / 100);
if (kind === 'grouped') {
  for (let k = 0; k < blocks; k++) users.push(s.t.users.create({ name: `u${k}` }).id);
  s.t.setPolicy(policyText(kind, blocks, 0)!);
} else users.push(s.t.users.create({ name: 'admin' }).id);

function join_(i: number, ephemeral = false) {
  const tagged = kind === 'grouped' && isTagged(i) && !ephemeral;
  const node = s.t.nodes.register({
    machineKey: key('mkey'),
    nodeKey: key('nodekey'),
    hostname: `bench-${i}`,
    hostinfo: { Hostname: `bench-${i}`, OS: 'linux', OSVersion: 'Debian 12.8', IPNVersion: '1.80.0-bench', NetInfo: { PreferredDERP: 999 } },
    userId: tagged ? null : users[kind === 'grouped' ? blockOf(i) : 0]!,
    tags: tagged ? [`tag:t${blockOf(i)}`] : [],
    ephemeral,
    method: 'authkey',
  });
  s.t.nodes.report(node.id, { discoKey: key('discokey'), endpoints: [{ addr: `192.0.2.${i & 255}:41641`, type: 1 }] });
  return node.id as number;
}

/** Runs a phase and prints its CPU time (flushes included: it waits until the mapper has been quiet a while), wall time to its last frame. */
async function phase(name: string, body: () => Promise<void>) {
  const profiler = values['profile-dir'] ? new Inspector() : undefined;
  profiler?.connect();
  profiler?.post('Profiler.enable');
  profiler?.post('Profiler.start');
  const heap = values['heap-profile-dir'] ? new Inspector() : undefined;
  heap?.connect();
  // Every sampled allocation, also those a GC has collected since: what a phase allocates, not what it keeps.
  heap?.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
  const cpu0 = process.cpuUsage();
  const sent0 = { ...sent };
  const t0 = performance.now();
  await body();
  const quietAt = await quiet();
  const cpu = process.cpuUsage(cpu0);
  const base = name.replace(/[^a-z0-9]+/gi, '-').replace(/-+$/, '');
  const file = join(values['profile-dir'] ?? '', `${base}.cpuprofile`);
  profiler?.post('Profiler.stop', (err, res) => err || writeFileSync(file, JSON.stringify(res.profile)));
  profiler?.disconnect();
  const heapFile = join(values['heap-profile-dir'] ?? '', `${base}.heapprofile`);
  heap?.post('HeapProfiler.stopSampling', (err, res) => err || writeFileSync(heapFile, JSON.stringify(res.profile)));
  heap?.disconnect();
  const mib = (sent.bytes - sent0.bytes) / 2 ** 20;
  console.log(`${name.padEnd(22)} cpu ${((cpu.user + cpu.system) / 1e6).toFixed(2).padStart(6)} s  wall ${((quietAt - t0) / 1000).toFixed(2).padStart(6)} s  frames ${sent.frames - sent0.frames}  sent ${mib.toFixed(1)} MiB  heap ${heapMiB()} MiB`);
}

/**
 * Waits until no frame was sent for flushSettleMs (a flush to 50,000 streams writes in slices for longer than
 * that: a fixed wait after the phase cut it short); returns when the last frame went out.
 */
async function quiet(): Promise<number> {
  let frames = -1;
  let lastAt = performance.now();
  while (performance.now() - lastAt < flushSettleMs) {
    if (sent.frames !== frames) [frames, lastAt] = [sent.frames, performance.now()];
    await sleep(50);
  }
  return lastAt;
}

/** The heap in use after a full GC when run with --expose-gc (what the mapper and tailnet hold), else as it is. */
function heapMiB(): string {
  (globalThis as { gc?: () => void }).gc?.();
  return (process.memoryUsage().heapUsed / 2 ** 20).toFixed(0);
}

/** Connects nodes 64 at a time, as the bench's load generator does: register, report, stream, online. */
async function connect(ids: number[]) {
  for (let i = 0; i < ids.length; i += 64) {
    await Promise.all(ids.slice(i, i + 64).map(async (id) => {
      await s.open(id);
      s.t.nodes.setOnline(id, true);
    }));
  }
}

if (values['profile-dir']) mkdirSync(values['profile-dir'], { recursive: true });
if (values['heap-profile-dir']) mkdirSync(values['heap-profile-dir'], { recursive: true });
console.log(`mapper CPU, ${n} nodes, ${kind}, src ${values.src}`);
const ids: number[] = [];
await phase('mass connect', async () => {
  for (let i = 0; i < n; i += 64) {
    const batch = Array.from({ length: Math.min(64, n - i) }, (_, k) => join_(i + k));
    ids.push(...batch);
    await connect(batch);
  }
});
const eph = Array.from({ length: Math.round(n * 0.05) }, (_, k) => Math.floor((k * n) / Math.round(n * 0.05)) & ~1);
let wave = eph.map((i) => join_(i, true));
await connect(wave);
await sleep(600);
await phase('ephemeral churn (5 %)', async () => {
  for (const id of wave) s.t.nodes.remove(id);
  wave = eph.map((i) => join_(i, true));
  await connect(wave);
});
await phase('policy change', async () => {
  const cpu0 = process.cpuUsage();
  s.t.setPolicy(policyText(kind, blocks, 1) ?? policyText('allow-all', 1, 1)!);
  const cpu = process.cpuUsage(cpu0);
  console.log(`  (setPolicy itself: ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s)`);
});
await phase('restart + reconnect', async () => {
  s.mapper.stop();
  s.store.close();
  s = server();
  await connect([...ids, ...wave]);
});
s.mapper.stop();
s.store.close();
rmSync(dir, { recursive: true, force: true });
