/**
 * The mapper's map encoding on a real tailnet (SQLite store, live policy view, zstd frames): a full map built from
 * peers serialized once, with shared compressed chunks of peers, decodes byte for byte to the JSON of the object
 * form (netmap.ts fullMap) for every viewer, with
 * tags, subnet routes, exit nodes, SSH rules and per-viewer capabilities; streams that get the same delta share one
 * encoded frame; and a client that applies every delta ends with what a fresh full map says.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import zstd from 'zstd-napi';
import { createFrameEncoder, lengthPrefixSize } from '../../src/control/frames.ts';
import { createMapper, type Session } from '../../src/control/mapper.ts';
import { fullMap, type NetmapContext } from '../../src/control/netmap.ts';
import type { MapResponse, WireNode } from '../../src/control/wire.ts';
import { createPolicyView } from '../../src/state/policy-view.ts';
import { createPrimaryRoutes } from '../../src/state/routes.ts';
import { createTailnet } from '../../src/state/tailnet.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'tailplane-map-encoding-'));
const store = openSqliteStore(join(dir, 'tailplane.sqlite'));
after(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const key = (prefix: string) => `${prefix}:${randomBytes(32).toString('hex')}`;
const dns = { magicDns: true, overrideLocalDns: true, baseDomain: 'enc.example', nameservers: ['9.9.9.9'], splitDns: {}, searchDomains: [], extraRecords: [] };
const t = createTailnet(store, { prefixes: { v4: '100.64.0.0/10', v6: 'fd7a:115c:a1e0::/48', allocation: 'sequential' }, defaultDns: dns, expirySeconds: 180 * 86400 });
const alice = t.users.create({ name: 'alice', email: 'alice@example.com' });
const bob = t.users.create({ name: 'bob' });
t.setPolicy(
  JSON.stringify({
    tagOwners: { 'tag:router': ['alice@example.com'], 'tag:server': ['alice@example.com'] },
    acls: [
      { action: 'accept', src: ['alice@example.com'], dst: ['*:*'] },
      { action: 'accept', src: ['bob@'], dst: ['tag:server:443', 'autogroup:internet:*'] },
      { action: 'accept', src: ['tag:router'], dst: ['tag:server:22'] },
      // Filter rules with IPProto and CapGrant, so each member of a FilterRule is encoded.
      { action: 'accept', src: ['tag:router'], proto: 'udp', dst: ['tag:server:53'] },
    ],
    grants: [{ src: ['bob@'], dst: ['tag:server'], app: { 'example.com/cap/files': [{ path: '/srv' }] } }],
    ssh: [{ action: 'accept', src: ['alice@example.com'], dst: ['tag:server'], users: ['root'] }],
    nodeAttrs: [{ target: ['bob@'], attr: ['funnel'] }, { target: ['tag:server'], attr: ['drive:share'] }],
  }),
);

/** Registers a node as a client would end up: disco key, endpoints, home DERP, online. */
function join_(name: string, owner: { userId: number | null; tags: string[] }, routes: string[] = []) {
  const n = t.nodes.register({
    machineKey: key('mkey'),
    nodeKey: key('nodekey'),
    hostname: name,
    hostinfo: { Hostname: name, OS: 'linux', RoutableIPs: routes, NetInfo: { PreferredDERP: 999 } },
    ...owner,
    ephemeral: false,
    method: 'authkey',
  });
  if (routes.length) t.nodes.approveRoutes(n.id, routes);
  t.nodes.report(n.id, { discoKey: key('discokey'), endpoints: [{ addr: `192.0.2.${n.id}:41641`, type: 1 }] });
  t.nodes.setOnline(n.id, true);
  return t.nodes.find(n.id)!;
}

const policy = createPolicyView(t, { serverUrl: 'https://control.example' });
const primary = createPrimaryRoutes();
const ctx: NetmapContext = {
  tailnet: t,
  derpMap: () => ({ Regions: { 999: { RegionID: 999, RegionCode: 'x', Nodes: [] } } }) as never,
  primaryRoutes: (id) => primary.routesOf(id),
  certificates: true,
};
// Two peers per shared chunk and every rule's SrcIPs a shared part, so full maps and filter deltas are made of
// several zstd frames, some of them shared.
const mapper = createMapper({ ...ctx, policy, primary, frames: createFrameEncoder(), chunkPeers: 2, sharedSrcMin: 0 });
/** Every view counted wide (as with allow-all on a large tailnet): flushes search the sorted views, not the reverse index. */
// With a policy view of its own, as every mapper has: a view hands the nodes a compile affected to one consumer.
const wideMapper = createMapper({ ...ctx, policy: createPolicyView(t, { serverUrl: 'https://control.example' }), primary, frames: createFrameEncoder(), chunkPeers: 2, wideViewPeers: 0 });
/** A flush that yields after every stream, so changes, opens and closes land between its slices. */
const slicedMapper = createMapper({ ...ctx, policy: createPolicyView(t, { serverUrl: 'https://control.example' }), primary, frames: createFrameEncoder(), chunkPeers: 2, sliceMs: 0 });
/** zstd frames in a map frame (each starts with the magic number 0xFD2FB528). */
const zstdFrames = (f: Buffer) => {
  let count = 0;
  for (let i = f.indexOf(zstdMagic); i >= 0; i = f.indexOf(zstdMagic, i + 1)) count++;
  return count;
};
const zstdMagic = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
/** Stored frames (single segment, one raw last block) the server writes itself, without the compressor. */
const storedFrames = (f: Buffer) => {
  let count = 0;
  for (let i = f.indexOf(zstdMagic); i >= 0; i = f.indexOf(zstdMagic, i + 1)) {
    const fcs = f[i + 4] === 0x20 ? 1 : f[i + 4] === 0x60 ? 2 : 0;
    if (fcs && ((f[i + 5 + fcs]! >> 1) & 3) === 0) count++;
  }
  return count;
};

/** The JSON text of each frame a stream received (length prefix checked, zstd undone). */
function openStream(nodeId: number) {
  const frames: Buffer[] = [];
  const session: Session = { nodeId, send: (f) => frames.push(f), end: () => {} };
  const text = (f: Buffer) => {
    assert.equal(f.readUInt32LE(0), f.length - lengthPrefixSize);
    return new zstd.Decompressor().decompress(f.subarray(lengthPrefixSize)).toString('utf8');
  };
  return { session, frames, text, json: () => frames.map((f) => JSON.parse(text(f)) as MapResponse) };
}

const controlTime = (json: string) => json.replace(/"ControlTime":"[^"]*"/, '"ControlTime":"T"');

test('full maps: byte for byte the JSON of the object form, for every viewer', async () => {
  join_('alice-laptop', { userId: alice.id, tags: [] });
  join_('bob-laptop', { userId: bob.id, tags: [] });
  join_('router', { userId: null, tags: ['tag:router'] }, ['10.1.0.0/16', '0.0.0.0/0', '::/0']);
  join_('exit', { userId: null, tags: ['tag:router'] }, ['0.0.0.0/0', '::/0']);
  join_('web', { userId: null, tags: ['tag:server'] });
  primary.update(t.nodes.list(), t.nodes.isOnline);
  await policy.settle();
  const compiled = policy.current();
  const streams = t.nodes.list().map((n) => ({ node: n, stream: openStream(n.id) }));
  const frameCounts: number[] = [];
  const storedCounts: number[] = [];
  for (const { node, stream } of streams) {
    const first = await mapper.open(stream.session);
    assert.ok(first);
    const expected = JSON.stringify(fullMap(ctx, node, compiled.forNode(node.id)));
    assert.equal(controlTime(stream.text(first)), controlTime(expected), `full map of ${node.givenName}`);
    frameCounts.push(zstdFrames(first));
    storedCounts.push(storedFrames(first));
  }
  assert.ok(Math.max(...frameCounts) >= 3, `full maps carry shared chunks as their own zstd frames: ${frameCounts}`);
  assert.ok(Math.max(...storedCounts) >= 1, `short pieces between them go as stored frames: ${storedCounts}`);
  // The viewers really differ: capabilities, filters and peer sets are per node.
  const maps = new Map(streams.map(({ node }) => [node.givenName, fullMap(ctx, node, compiled.forNode(node.id))]));
  assert.ok('funnel' in maps.get('bob-laptop')!.Node!.CapMap!);
  assert.ok(!('funnel' in maps.get('alice-laptop')!.Node!.CapMap!));
  assert.ok(maps.get('web')!.SSHPolicy?.rules?.length);
  const webFilter = maps.get('web')!.PacketFilter!;
  assert.ok(webFilter.some((r) => r.IPProto) && webFilter.some((r) => r.CapGrant), 'the filters compared carry IPProto and CapGrant rules');
  const router = maps.get('alice-laptop')!.Peers!.find((p) => p.Name.startsWith('router.'))!;
  assert.deepEqual(router.PrimaryRoutes, ['10.1.0.0/16']);
  assert.ok(router.AllowedIPs.includes('0.0.0.0/0'));
  for (const { stream } of streams) mapper.close(stream.session);
});

test('deltas: one encoded frame shared by streams that learn the same thing; applied deltas equal a fresh full map', async () => {
  const streams = t.nodes.list().flatMap((n) => [mapper, wideMapper, slicedMapper].map((m) => ({ id: n.id, m, stream: openStream(n.id) })));
  /** A client's view of its peers, built only from what it received. */
  const netmaps = new Map<(typeof streams)[number], Map<number, WireNode>>();
  for (const s of streams) {
    s.stream.frames.push((await s.m.open(s.stream.session))!);
    netmaps.set(s, new Map((s.stream.json()[0]!.Peers ?? []).map((p) => [p.ID, p])));
  }
  const newcomer = join_('carol-laptop', { userId: alice.id, tags: [] });
  const mover = t.nodes.list().find((n) => n.givenName === 'web')!;
  t.nodes.report(mover.id, { endpoints: [{ addr: '203.0.113.7:41641', type: 1 }] });
  await new Promise((r) => setTimeout(r, 300));

  // Nodes on the same side of the same rules (alice's and bob's laptops; the two tag:router nodes) learn the very
  // same thing: each pair was sent one buffer, encoded once.
  const byName = (name: string) => streams.find((s) => s.m === mapper && s.id === t.nodes.list().find((n) => n.givenName === name)!.id)!.stream.frames;
  const [laptop, bobs, router, exit] = ['alice-laptop', 'bob-laptop', 'router', 'exit'].map(byName) as [Buffer[], Buffer[], Buffer[], Buffer[]];
  assert.equal(laptop.length, 2);
  assert.equal(bobs.at(-1), laptop.at(-1));
  assert.equal(exit.at(-1), router.at(-1));
  assert.notEqual(router.at(-1), laptop.at(-1));

  /** Applies every delta each stream got since its last check and compares with a fresh full map. */
  const seen = new Map<(typeof streams)[number], number>();
  const verify = async (label: string) => {
    await policy.settle();
  const compiled = policy.current();
    for (const s of streams) {
      const { id, stream } = s;
      const peers = netmaps.get(s)!;
      if (!t.nodes.find(id)) continue;
      const frames = stream.json();
      const from = seen.get(s) ?? 1;
      seen.set(s, frames.length);
      for (const m of frames.slice(from)) {
        for (const p of m.PeersChanged ?? []) peers.set(p.ID, p);
        for (const p of m.PeersChangedPatch ?? []) {
          const { NodeID, DERPRegion, ...rest } = p;
          peers.set(NodeID, { ...peers.get(NodeID)!, ...rest, ...(DERPRegion ? { HomeDERP: DERPRegion } : {}) });
        }
        for (const gone of m.PeersRemoved ?? []) peers.delete(gone);
      }
      const self = t.nodes.find(id)!;
      const fresh = fullMap(ctx, self, compiled.forNode(id));
      assert.deepEqual([...peers.values()].sort((a, b) => a.ID - b.ID), fresh.Peers ?? [], `netmap of ${self.givenName} after ${label}`);
      const filter = frames.filter((m) => m.PacketFilter).at(-1)!.PacketFilter;
      assert.deepEqual(filter, fresh.PacketFilter, `packet filter of ${self.givenName} after ${label}`);
    }
  };
  await verify('a join and an endpoint change');
  assert.ok(streams.some((s) => s.stream.json().slice(1).some((m) => m.PacketFilter)), 'the join changed filters (SrcIPs) by delta');
  assert.ok([...netmaps.values()].some((peers) => peers.has(newcomer.id)));
  // One batch that removes a node, adds another and moves one again: each stream learns only its own part. The
  // new node may get the removed one's id (SQLite reuses the highest), which must not pass for the old node.
  t.nodes.remove(newcomer.id);
  join_('dave-laptop', { userId: alice.id, tags: [] });
  t.nodes.report(mover.id, { endpoints: [{ addr: '203.0.113.8:41641', type: 1 }] });
  await new Promise((r) => setTimeout(r, 300));
  await verify('a removal, a join and an endpoint change in one batch');
  assert.ok([...netmaps.values()].every((peers) => ![...peers.values()].some((p) => p.Name.startsWith('carol-laptop.'))));

  // A policy change that leaves capabilities alone sends new filters, not the self node; one that grants a
  // capability sends its holders their node again, CapMap and all.
  const policyText = t.policy()!.text;
  const counts = streams.map((s) => s.stream.frames.length);
  t.setPolicy(policyText.replace('"tag:server:22"', '"tag:server:22,2222"'));
  await new Promise((r) => setTimeout(r, 300));
  const newFrames = (s: (typeof streams)[number], i: number) => s.stream.json().slice(counts[i]);
  assert.ok(streams.some((s, i) => newFrames(s, i).some((m) => m.PacketFilter)), 'the port reached some filters');
  assert.ok(streams.every((s, i) => newFrames(s, i).every((m) => !m.Node)), 'no self node without a capability change');
  await verify('a policy change that moves no capability');
  const again = streams.map((s) => s.stream.frames.length);
  t.setPolicy(policyText.replace('"target":["bob@"]', '"target":["bob@","alice@example.com"]'));
  await new Promise((r) => setTimeout(r, 300));
  const alices = streams.filter((s) => t.nodes.find(s.id)?.userId === alice.id);
  assert.ok(alices.length > 0);
  for (const s of alices) {
    const node = s.stream.json().slice(again[streams.indexOf(s)]).find((m) => m.Node)?.Node;
    assert.ok(node && 'funnel' in node.CapMap!, `alice's node ${s.id} learns its funnel capability`);
  }
  for (const s of streams) s.m.close(s.stream.session);
});

test('a flush that yields between streams: one closed meanwhile hears nothing more, the others all of it', async () => {
  const streams = t.nodes.list().map((n) => ({ id: n.id, stream: openStream(n.id) }));
  for (const s of streams) s.stream.frames.push((await slicedMapper.open(s.stream.session))!);
  await new Promise((r) => setTimeout(r, 100));
  const counts = streams.map((s) => s.stream.frames.length);
  const since = (s: (typeof streams)[number]) => s.stream.json().slice(counts[streams.indexOf(s)]);
  // An endpoint change: the streams to tell come from the reverse index, a set taken when the flush began.
  const mover = t.nodes.list().find((n) => n.givenName === 'web')!;
  const seers = streams.filter((s) => s.id !== mover.id && policy.current().forNode(s.id).peers.includes(mover.id));
  assert.ok(seers.length >= 3, 'several streams see the node that moves');
  // The first stream written closes one that will hear of the move but was not written yet, before the
  // flush's next slice.
  let victim: (typeof streams)[number] | undefined;
  for (const s of streams) {
    const send = s.stream.session.send;
    s.stream.session.send = (f) => {
      send(f);
      if (victim) return;
      victim = seers.find((x) => x !== s && since(x).length === 0);
      setImmediate(() => slicedMapper.close(victim!.stream.session));
    };
  }
  t.nodes.report(mover.id, { endpoints: [{ addr: '203.0.113.9:41641', type: 1 }] });
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(victim, 'a stream was closed between slices');
  assert.deepEqual(since(victim), [], 'the stream closed before its slice was not written to');
  const moved = (s: (typeof streams)[number]) => since(s).some((m) => JSON.stringify(m).includes('203.0.113.9:41641'));
  for (const s of seers.filter((x) => x !== victim)) assert.ok(moved(s), `stream of node ${s.id} heard of the move`);
  // Closed before its slice, it must not have been put back in the reverse index: later changes pass it by.
  t.nodes.report(mover.id, { endpoints: [{ addr: '203.0.113.10:41641', type: 1 }] });
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(since(victim), []);
});

test('a storm is held while its changes keep coming, and no longer than its limit', async () => {
  // Quiet gaps of 200 ms end a storm here (50 ms in the server), so a slow test machine does not end one early.
  const stormy = createMapper({ ...ctx, policy: createPolicyView(t, { serverUrl: 'https://control.example' }), primary, frames: createFrameEncoder(), storm: { gapMs: 200, maxMs: 800 } });
  const mover = t.nodes.list().find((n) => n.givenName === 'web')!;
  const watcher = t.nodes.list().find((n) => n.givenName === 'alice-laptop')!;
  const stream = openStream(watcher.id);
  const arrivals: number[] = [];
  stream.session.send = (f) => {
    stream.frames.push(f);
    arrivals.push(performance.now());
  };
  stream.frames.push((await stormy.open(stream.session))!);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let port = 42000;
  const move = () => t.nodes.report(mover.id, { endpoints: [{ addr: `203.0.113.20:${port++}`, type: 1 }] });
  /** 40 changes at once (a storm), then one every 10 ms for `ms`; when the last was made. */
  const burst = async (ms: number) => {
    for (let i = 0; i < 40; i++) move();
    for (const end = performance.now() + ms; performance.now() < end; ) {
      await sleep(10);
      move();
    }
    return performance.now();
  };
  const lastAddr = () => JSON.stringify(stream.json().at(-1)).includes(`203.0.113.20:${port - 1}`);

  // A burst shorter than the limit goes out once, after its last change.
  const ended = await burst(500);
  await sleep(400);
  assert.equal(arrivals.length, 1, `one delta for the whole burst, not ${arrivals.length}`);
  assert.ok(arrivals[0]! >= ended, 'it went out after the burst ended');
  assert.ok(lastAddr(), 'with the last endpoint');
  // A longer one is flushed at the limit while it goes on, then the rest once it ends.
  const started = performance.now();
  await burst(1600);
  await sleep(400);
  assert.ok(arrivals.length >= 3, `the long burst went out in more than one delta (${arrivals.length - 1})`);
  assert.ok(arrivals[1]! - started < 1300, `its first delta went out ${(arrivals[1]! - started).toFixed(0)} ms after it began`);
  assert.ok(lastAddr(), 'the last delta has the last endpoint');
  stormy.stop();
});

test('after a quiet spell a lone change goes out at once, however long the last flush took', async () => {
  const quick = createMapper({ ...ctx, policy: createPolicyView(t, { serverUrl: 'https://control.example' }), primary, frames: createFrameEncoder() });
  const mover = t.nodes.list().find((n) => n.givenName === 'web')!;
  const watcher = t.nodes.list().find((n) => n.givenName === 'alice-laptop')!;
  const stream = openStream(watcher.id);
  const arrivals: number[] = [];
  let slow = true;
  stream.session.send = (f) => {
    stream.frames.push(f);
    arrivals.push(performance.now());
    // The first delta takes 150 ms to write: held three times as long, the next batch would wait 450 ms.
    if (slow) for (const end = performance.now() + 150; performance.now() < end; );
    slow = false;
  };
  stream.frames.push((await quick.open(stream.session))!);
  t.nodes.report(mover.id, { endpoints: [{ addr: '203.0.113.11:41641', type: 1 }] });
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(arrivals.length, 1);
  const changedAt = performance.now();
  t.nodes.report(mover.id, { endpoints: [{ addr: '203.0.113.12:41641', type: 1 }] });
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(arrivals.length, 2);
  assert.ok(arrivals[1]! - changedAt < 200, `the lone change went out after ${(arrivals[1]! - changedAt).toFixed(0)} ms`);
  quick.stop();
  mapper.stop();
  wideMapper.stop();
  slicedMapper.stop();
});
