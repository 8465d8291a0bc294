/**
 * The bench's load generator (loadgen/fleet.ts driving gofleet, tailscale's own control client stack) against a
 * real tailplane server: what every scenario relies on — joins with full maps, and a watch for each kind of
 * update (peer added, peer removed, endpoint patch, packet filter) reporting when each node saw it.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { buildFleet, gofleetDir, now, startFleet, type Fleet } from './loadgen/fleet.ts';
import { policyText } from './policy.ts';
import { startBenchServer, type BenchServer } from './servers/index.ts';
import type { BenchKeys } from './servers/server.ts';

let server: BenchServer;
let keys: BenchKeys;
let fleet: Fleet;

before(async () => {
  server = await startBenchServer('tailplane');
  keys = await server.provision('allow-all', 1);
  fleet = await startFleet(await server.target(), { concurrency: 4 });
});
after(async () => {
  await fleet?.close();
  await server?.stop();
});

/** Watches, triggers, waits up to 10 s; returns each watching node's summary. */
async function seen(groups: Parameters<Fleet['watch']>[0], trigger: () => Promise<unknown>) {
  const w = await fleet.watch(groups);
  await trigger();
  const complete = await w.wait(now() + 10_000);
  const a = await w.arrivals();
  await w.close();
  return { complete, a };
}

/** Each node's netmap peer count once they agree on `want` (deltas go out in batches), or after 5 s. */
async function peerCounts(want: number): Promise<number[]> {
  const end = now() + 5_000;
  for (;;) {
    const counts = (await fleet.stats()).map((x) => x.peers);
    if (counts.every((c) => c === want) || now() > end) return counts;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('nodes join over Noise and each gets a full map with the others', async () => {
  for (let i = 0; i < 3; i++) await fleet.join(i, keys.node(i));
  assert.equal(new Set(fleet.nodes.map((x) => x.id)).size, 3);
  assert.ok(fleet.nodes.every((x) => x.firstMapAt > 0 && x.firstMapMs > 0));
  assert.deepEqual(await peerCounts(2), [2, 2, 2]);
});

test('a watch reports when every node learnt of a joiner', async () => {
  const others = [...fleet.nodes];
  const joiner = await fleet.prepare(3);
  const t0 = now();
  const { complete, a } = await seen([{ nodes: others, added: [joiner.nodeKey] }], () => fleet.start(joiner, keys.node(3)));
  assert.ok(complete);
  assert.equal(a.length, 3);
  for (const x of a) assert.ok(x.arrived === 1 && x.last > t0 && x.last < now(), JSON.stringify(x));
});

test('an endpoint change arrives as a patch, a policy change as a packet filter', async () => {
  const [mover, ...rest] = fleet.nodes;
  const patched = await seen([{ nodes: rest, patch: { id: mover!.id, key: mover!.nodeKey } }], () => fleet.liteUpdate(mover!));
  assert.ok(patched.complete && patched.a.every((x) => x.arrived === 1));
  const filtered = await seen([{ nodes: fleet.nodes, filter: true }], () => server.setPolicy(policyText('allow-all', 1, 1)!));
  assert.ok(filtered.complete && filtered.a.length === 4);
});

test('an ephemeral node that logs out is seen removed; a watch not met says so, until dropped', async () => {
  const stayers = [...fleet.nodes];
  const eph = await fleet.prepare(10, 'eph');
  // The others must have it before it leaves: a node never sent a peer is not sent its removal either.
  assert.ok((await seen([{ nodes: stayers, added: [eph.nodeKey] }], () => fleet.start(eph, keys.ephemeral(0)))).complete);
  const frames0 = (await fleet.totals()).frames;
  const gone = await seen([{ nodes: stayers, removed: [{ id: eph.id, key: eph.nodeKey }] }], () => fleet.leave(eph));
  assert.ok(gone.complete && gone.a.every((x) => x.arrived === 1));
  assert.ok((await fleet.totals()).frames >= frames0 + stayers.length);
  // Nobody logs out now: the watch times out incomplete, with nothing arrived.
  const w = await fleet.watch([{ nodes: stayers, removed: [{ id: stayers[0]!.id, key: stayers[0]!.nodeKey }] }]);
  assert.equal(await w.wait(now() + 300), false);
  assert.ok((await w.arrivals()).every((x) => x.arrived === 0 && x.n === 1));
  // A leaver that never got out is not waited for once dropped.
  await w.drop({ ids: [stayers[0]!.id] });
  assert.equal(await w.wait(now() + 300), true);
  assert.ok((await w.arrivals()).every((x) => x.n === 0));
  await w.close();
});

test('after a restart every node reconnects and gets its full map again', async () => {
  const before = fleet.nodes.map((x) => x.firstMapAt);
  await server.stop();
  await server.start();
  await fleet.setTarget(await server.target());
  await Promise.all(fleet.nodes.map((x) => fleet.reconnect(x)));
  fleet.nodes.forEach((x, i) => assert.ok(x.firstMapAt > before[i]!));
  assert.deepEqual(await peerCounts(3), [3, 3, 3, 3]);
});

test("full maps of shared chunks and stored frames decode in tailscale's own client", async () => {
  // 40 nodes: each full map carries the peers of other 16-id chunks as shared zstd frames, joined by stored
  // frames (",") the server writes itself; tailscale's decoder must read them all as one JSON text.
  for (let i = 4; i < 40; i++) await fleet.join(i, keys.node(i));
  assert.deepEqual(await peerCounts(39), Array(40).fill(39));
  await server.stop();
  await server.start();
  await fleet.setTarget(await server.target());
  await Promise.all(fleet.nodes.map((x) => fleet.reconnect(x)));
  assert.deepEqual(await peerCounts(39), Array(40).fill(39));
});

test("gofleet's X25519 is the patched ladder, and it agrees with crypto/ecdh", async () => {
  // Every handshake above already ran through it against the server's X25519 (node:crypto); here the symbol
  // proves the patch was built in, and the Go tests compare it with crypto/ecdh and RFC 7748's vector.
  const symbols = execFileSync('go', ['tool', 'nm', await buildFleet()], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.match(symbols, /golang\.org\/x\/crypto\/curve25519\.ladder/);
  const r = spawnSync('go', ['test', '-count=1', './curve25519/'], { cwd: gofleetDir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
