/**
 * Server CPU per registration without the network: a tailnet of --nodes connected nodes (SQLite file, live policy
 * view, mapper), then --joins more nodes join 64 at a time the way POST /machine/register and the first streaming
 * POST /machine/map do it (pre-auth key, register with its audit entry, report disco key / endpoints / hostinfo,
 * first map, online), and the mapper's flushes send the new peers to the streams that may see them. Prints CPU ms
 * per registration by phase; with --profile FILE it also writes a .cpuprofile of the joins (test/bench/profile-summary.ts
 * summarises it). Noise and HTTP/2 are not included: `npm run bench` measures them with the rest.
 *   node --import tsx test/bench/register-cpu.ts [--nodes 10000] [--joins 640] [--rate 0] [--policy grouped|allow-all] [--src ../../src]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session as Inspector } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { flushSettleMs, loadSrc } from './src-modules.ts';
import { blockOf, isTagged, policyText, type PolicyKind } from './policy.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '10000' },
    joins: { type: 'string', default: '640' },
    rate: { type: 'string', default: '0' },
    policy: { type: 'string', default: 'grouped' },
    profile: { type: 'string' },
    src: { type: 'string', default: join(import.meta.dirname, '../../src') },
  },
});
const n = Number(values.nodes);
const joins = Number(values.joins);
/** Joins per second, spread evenly (a steady stream compiles the policy once per batch window); 0: 64 at a time. */
const rate = Number(values.rate);
const kind = values.policy as PolicyKind;
const { openSqliteStore, createTailnet, createPolicyView, createPrimaryRoutes, createMapper, createFrameEncoder, runAs } = await loadSrc(values.src);

const hex = () => randomBytes(32).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'tailplane-register-cpu-'));
const dns = { magicDns: true, overrideLocalDns: true, baseDomain: 'bench.example', nameservers: [], splitDns: {}, searchDomains: [], extraRecords: [] };
const options = { prefixes: { v4: '100.64.0.0/10', v6: 'fd7a:115c:a1e0::/48', allocation: 'sequential' }, defaultDns: dns, expirySeconds: 180 * 86400 };
const frames = createFrameEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const store = openSqliteStore(join(dir, 'tailplane.sqlite'));
const t = createTailnet(store, options);
const policy = createPolicyView(t, { serverUrl: 'https://control.example', onCompile: (s: number) => measuring && (cpu['policy compile'] = (cpu['policy compile'] ?? 0) + s * 1000) });
const primary = createPrimaryRoutes();
const derp = { Regions: { 999: { RegionID: 999, RegionCode: 'x', RegionName: 'x', Nodes: [] } } };
const mapper = createMapper({ tailnet: t, policy, primary, frames, derpMap: () => derp, primaryRoutes: (id: number) => primary.routesOf(id), certificates: false });
const sent = { frames: 0, bytes: 0 };

/** Reusable pre-auth keys as the bench provisions them: per block a user key and a tag key (grouped). */
const blocks = Math.ceil((n + joins + 1) / 100);
const keys: { user: string[]; tag: string[] } = { user: [], tag: [] };
if (kind === 'grouped') {
  for (let k = 0; k < blocks; k++) keys.user.push(t.preAuthKeys.create({ userId: t.users.create({ name: `u${k}` }).id, reusable: true }).key);
  t.setPolicy(policyText(kind, blocks, 0)!);
  for (let k = 0; k < blocks; k++) keys.tag.push(t.preAuthKeys.create({ userId: null, reusable: true, tags: [`tag:t${k}`] }).key);
} else keys.user.push(t.preAuthKeys.create({ userId: t.users.create({ name: 'admin' }).id, reusable: true }).key);
const keyOf = (i: number) => (kind === 'grouped' ? (isTagged(i) ? keys.tag[blockOf(i)]! : keys.user[blockOf(i)]!) : keys.user[0]!);

/** CPU ms spent in each synchronous phase, summed over the measured joins. */
const cpu: Record<string, number> = {};
let measuring = false;
const timed = <T>(phase: string, fn: () => T): T => {
  const c0 = process.cpuUsage();
  try {
    return fn();
  } finally {
    const c = process.cpuUsage(c0);
    if (measuring) cpu[phase] = (cpu[phase] ?? 0) + (c.user + c.system) / 1000;
  }
};

/** One node joining as register.ts and map.ts serve it: register, then a streaming map request. */
async function join_(i: number) {
  const machineKey = `mkey:${hex()}`;
  const hostinfo = { Hostname: `bench-${i}`, OS: 'linux', OSVersion: 'Debian 12.8', IPNVersion: '1.80.0-bench', GoArch: 'amd64', GoVersion: 'go1.23.4', BackendLogID: hex(), NetInfo: { PreferredDERP: 999, WorkingUDP: true, HavePortMap: false } };
  const { node, durable } = runAs({ actor: `machine:${machineKey.slice(5, 17)}`, door: 'control', source: '127.0.1.1' }, () =>
    timed('register (key, node, store, audit)', () => {
      let tags: string[] = [];
      const key = t.preAuthKeys.consume(keyOf(i), (k: { tags: string[] }) => (tags = [...k.tags]));
      const input = { machineKey, nodeKey: `nodekey:${hex()}`, hostname: `bench-${i}`, hostinfo, userId: tags.length ? null : key.userId, tags, ephemeral: false, method: 'authkey' };
      // As register.ts: the join rides the store's group commit (an older --src without it commits alone).
      return t.nodes.registerGrouped ? t.nodes.registerGrouped(input) : { node: t.nodes.register(input), durable: undefined };
    }),
  );
  await durable;
  const endpoints = [`192.0.2.${(i + 1) & 255}:41641`, `198.51.${((i + 1) >> 8) & 255}.${(i + 1) & 255}:41641`, `[2001:db8::${(i + 1).toString(16)}]:41641`].map((addr, k) => ({ addr, type: [1, 2, 1][k] }));
  timed('report (disco, endpoints, hostinfo)', () => t.nodes.report(node.id, { discoKey: `discokey:${hex()}`, endpoints, hostinfo }));
  const session = { nodeId: node.id, send: (f: Buffer) => ((sent.frames += 1), (sent.bytes += f.length)), end: () => {} };
  // open() awaits the policy's settling, so other joins run meanwhile: its own CPU shows in the profile only.
  const first = await mapper.open(session);
  sent.bytes += first.length;
  timed('online', () => t.nodes.setOnline(node.id, true));
}

async function connect(from: number, count: number) {
  for (let i = from; i < from + count; i += 64) await Promise.all(Array.from({ length: Math.min(64, from + count - i) }, (_, k) => join_(i + k)));
}

console.log(`register CPU, ${n} nodes + ${joins} joins, ${kind}, src ${values.src}`);
const w0 = performance.now();
await connect(0, n);
await sleep(1000);
console.log(`  set-up: ${n} nodes connected in ${((performance.now() - w0) / 1000).toFixed(1)} s`);

const inspector = values.profile ? new Inspector() : undefined;
if (inspector) {
  inspector.connect();
  inspector.post('Profiler.enable');
  inspector.post('Profiler.setSamplingInterval', { interval: 500 });
  inspector.post('Profiler.start');
}
measuring = true;
const c0 = process.cpuUsage();
const s0 = { ...sent };
if (rate > 0) await Promise.all(Array.from({ length: joins }, (_, k) => sleep((k * 1000) / rate).then(() => join_(n + k))));
else await connect(n, joins);
// The joins' fan-out: a burst is held until it is over, then written.
await sleep(flushSettleMs);
const total = process.cpuUsage(c0);
measuring = false;
if (inspector) {
  inspector.post('Profiler.stop', (err, res) => {
    if (!err) writeFileSync(values.profile!, JSON.stringify(res.profile));
  });
}
const totalMs = (total.user + total.system) / 1000;
const synced = Object.values(cpu).reduce((a, b) => a + b, 0);
for (const [phase, ms] of Object.entries(cpu)) console.log(`  ${phase.padEnd(42)} ${(ms / joins).toFixed(3).padStart(7)} ms`);
console.log(`  ${'first maps, fan-out flushes, the rest'.padEnd(42)} ${((totalMs - synced) / joins).toFixed(3).padStart(7)} ms`);
console.log(`  ${'total per registration'.padEnd(42)} ${(totalMs / joins).toFixed(3).padStart(7)} ms   (frames ${sent.frames - s0.frames}, ${((sent.bytes - s0.bytes) / 2 ** 20).toFixed(1)} MiB)`);
mapper.stop();
store.close();
rmSync(dir, { recursive: true, force: true });
