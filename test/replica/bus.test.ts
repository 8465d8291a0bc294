/**
 * Two replicas in one process on a real PostgreSQL (two PostgresStores, two tailnets): writes on one reach the
 * other's subscribers through the change bus; presence, the DERP regions of live replicas and the leader are
 * shared; a replica that leaves takes its clients' online state and its region with it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defaultConfig } from '../../src/config/config.ts';
import { startReplica, type DerpRegionInfo, type Replica } from '../../src/replica/index.ts';
import { openPostgresStore } from '../../src/store/postgres/store.ts';
import type { Store } from '../../src/store/store.ts';
import type { Change } from '../../src/state/changes.ts';
import { createTailnet, type Tailnet } from '../../src/state/tailnet.ts';
import { startPostgres, type Postgres } from '../helpers/postgres.ts';

let db: Postgres;
type Side = { store: Store; tailnet: Tailnet; replica: Replica; seen: Change[]; regions: DerpRegionInfo[] };
let a: Side;
let b: Side;

const config = defaultConfig();
function side(regionId: number): Side {
  const store = openPostgresStore({ url: db.url, poolSize: 2, timeoutMs: 5000, tls: 'off' });
  const from = store.shared!.lastSeq();
  const tailnet = createTailnet(store, {
    prefixes: config.prefixes,
    defaultDns: { magicDns: true, baseDomain: 'ts.test', nameservers: [], overrideLocalDns: false, splitDns: {}, searchDomains: [], extraRecords: [] },
    expirySeconds: 0,
  });
  const s = { store, tailnet, seen: [] as Change[], regions: [] as DerpRegionInfo[] } as Side;
  tailnet.subscribe((c) => s.seen.push(c));
  s.replica = startReplica({
    url: db.url, shared: store.shared!, from, tailnet, heartbeatMs: 300, pollMs: 500, leaderRetryMs: 200,
    derp: { regionId, regionCode: `r${regionId}`, url: `http://127.0.0.1:${regionId}`, stunPort: null },
    onDerpRegions: (r) => (s.regions = r),
  });
  return s;
}

before(async () => {
  db = await startPostgres();
  a = side(901);
  b = side(902);
});
after(async () => {
  for (const s of [a, b]) {
    await s?.replica.stop().catch(() => {});
    s?.store.close();
  }
  await db?.destroy();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => boolean, ms = 5000): Promise<number> {
  const t0 = performance.now();
  while (!ok()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
  return performance.now() - t0;
}

test('writes on one replica reach the other’s subscribers within a second, with the same changes', async () => {
  const user = a.tailnet.users.create({ name: 'alice', email: 'alice@example.com' });
  const ms = await until('the user on B', () => b.seen.some((c) => c.kind === 'user-added' && c.user.id === user.id));
  console.log(`# user-added reached the other replica in ${ms.toFixed(0)} ms`);
  assert.ok(ms < 1000);
  const node = b.tailnet.nodes.register({ machineKey: `mkey:${'1'.repeat(64)}`, nodeKey: `nodekey:${'2'.repeat(64)}`, hostname: 'laptop', hostinfo: {}, userId: user.id, tags: [], ephemeral: false, method: 'authkey' });
  await until('the node on A', () => a.tailnet.nodes.find(node.id)?.nodeKey === node.nodeKey);
  a.tailnet.nodes.approveRoutes(node.id, ['10.0.0.0/24']);
  await until('the routes on B', () => b.seen.some((c) => c.kind === 'node-updated' && c.fields.includes('routes')));
  assert.deepEqual(b.tailnet.nodes.get(node.id).approvedRoutes, ['10.0.0.0/24']);
  b.tailnet.setPolicy('{"acls":[{"action":"accept","src":["*"],"dst":["*:*"]}]}');
  await until('the policy on A', () => a.tailnet.policy()?.text === b.tailnet.policy()?.text);
  // A's own writes are not applied again on A: one user-added only.
  assert.equal(a.seen.filter((c) => c.kind === 'user-added').length, 1);
});

test('catchUp applies what another replica committed at once, without waiting for its notification', () => {
  // Synchronous from the write to the read: no notification or poll can have run in between.
  const user = a.tailnet.users.create({ name: 'carol', email: 'carol@example.com' });
  assert.equal(b.tailnet.users.byName('carol'), undefined, 'not applied before the catch-up (the bus waits for its notification)');
  b.replica.catchUp();
  assert.equal(b.tailnet.users.byName('carol')?.name, 'carol');
  a.tailnet.users.remove(user.id);
  b.replica.catchUp();
  assert.equal(b.tailnet.users.byName('carol'), undefined);
});

test('an SSH check decided on one replica ends the destination’s long poll on the other at once', async () => {
  const node = a.tailnet.nodes.list()[0]!;
  const check = a.tailnet.sshChecks.start({
    srcNodeId: node.id, srcNode: node.givenName, srcUserId: node.userId!, srcUser: 'alice@example.com',
    dstNodeId: node.id, dstNode: node.givenName, sshUser: 'alice', localUser: 'alice', periodMs: 0,
  });
  // The destination's poll waits on A (up to 20 s); the admin's approval goes through B.
  const t0 = performance.now();
  const polled = a.tailnet.sshChecks.wait(check.id, 20_000);
  await until('the check on B', () => b.tailnet.sshChecks.get(check.id)?.state === 'pending');
  b.tailnet.sshChecks.approve(check.id, 'api-key:test');
  const decided = await polled;
  const ms = performance.now() - t0;
  console.log(`# approval on B ended A's poll after ${ms.toFixed(0)} ms`);
  assert.equal(decided.state, 'approved');
  assert.equal(decided.decidedBy, 'api-key:test');
  assert.ok(ms < 5000, `the poll ended on the decision, not at its 20 s limit (${ms.toFixed(0)} ms)`);
});

test('presence, the DERP map and the leader are shared; a replica that leaves takes its clients and region with it', async () => {
  await until('both regions on both', () => a.regions.length === 2 && b.regions.length === 2);
  assert.deepEqual(b.regions.map((r) => r.regionId).sort(), [901, 902]);
  await until('one leader', () => [a, b].filter((s) => s.replica.isLeader()).length === 1);
  const node = a.tailnet.nodes.list()[0]!;
  a.tailnet.nodes.setOnline(node.id, true);
  await until('online on B', () => b.tailnet.nodes.isOnline(node.id));
  assert.equal(b.replica.status().clients, 0);
  assert.equal(a.replica.status().clients, 1);
  // The node moves to B, then its old connection on A closes: it stays online on both.
  b.tailnet.nodes.setOnline(node.id, true);
  a.tailnet.nodes.setOnline(node.id, false);
  await sleep(700);
  assert.equal(a.tailnet.nodes.isOnline(node.id), true);
  assert.equal(b.tailnet.nodes.isOnline(node.id), true);
  b.tailnet.nodes.setOnline(node.id, false);
  await until('offline on A', () => !a.tailnet.nodes.isOnline(node.id));

  a.tailnet.nodes.setOnline(node.id, true);
  await until('online on B again', () => b.tailnet.nodes.isOnline(node.id));
  await a.replica.stop();
  await until('offline on B once A left', () => !b.tailnet.nodes.isOnline(node.id));
  await until('only B’s region left', () => b.regions.length === 1 && b.regions[0]!.regionId === 902);
  await until('B leads', () => b.replica.isLeader());
  assert.equal(b.replica.status().notifications.listening, true);
});
