/**
 * core.applyRemote: two tailnets on two SQLite stores stand in for two replicas. Every record tailnet A commits
 * is read back from A's store and applied to B, as the replica bus does with PostgreSQL's change log; B's
 * indexes must follow and B's subscribers must see the changes A's subscribers saw (same kinds, same fields).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { defaultConfig } from '../../src/config/config.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store, StoredTailnet } from '../../src/store/store.ts';
import type { Change } from '../../src/state/changes.ts';
import type { Node, User } from '../../src/domain/types.ts';
import type { RemoteEntity } from '../../src/state/core.ts';
import { createTailnet, type Tailnet } from '../../src/state/tailnet.ts';
import { createAutoApprover } from '../../src/state/auto-approve.ts';
import { createPolicyView } from '../../src/state/policy-view.ts';

const dir = mkdtempSync(join(tmpdir(), 'tailplane-remote-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = defaultConfig();
const open = (name: string): { store: Store; tailnet: Tailnet } => {
  const store = openSqliteStore(join(dir, name));
  const tailnet = createTailnet(store, {
    prefixes: config.prefixes,
    defaultDns: { magicDns: true, baseDomain: 'ts.test', nameservers: [], overrideLocalDns: false, splitDns: {}, searchDomains: [], extraRecords: [] },
    expirySeconds: 0,
  });
  return { store, tailnet };
};
const a = open('a.db');
const b = open('b.db');
after(() => {
  a.store.close();
  b.store.close();
});

/** What a subscriber saw, reduced to what the mapper and policy view act on. */
const seen = (t: Tailnet) => {
  const out: string[] = [];
  t.subscribe((c: Change) => out.push(c.kind === 'node-updated' ? `${c.kind}:${c.node.id}:${[...c.fields].sort().join(',')}` : 'node' in c ? `${c.kind}:${c.node.id}` : 'user' in c ? `${c.kind}:${c.user.id}` : c.kind));
  return out;
};
const seenA = seen(a.tailnet);
const seenB = seen(b.tailnet);

/** Reads a record back from A's store, shaped as the shared log's read() returns it. */
const read = (entity: RemoteEntity, id: string | number): unknown | null => {
  const all: StoredTailnet = a.store.load();
  const byId = <T>(rows: T[], of: (r: T) => number | string) => rows.find((r) => String(of(r)) === String(id)) ?? null;
  switch (entity) {
    case 'user': return byId(all.users, (u) => u.id);
    case 'node': return byId(all.nodes, (n) => n.id);
    case 'pre_auth_key': return byId(all.preAuthKeys, (k) => k.record.id);
    case 'setting': return all.settings[id] ?? null;
    default: throw new Error(`not read in this test: ${entity}`);
  }
};
/** Runs a write on A, applies the records it touched to B, and checks both sides published the same changes. */
const step = (write: () => void, refs: [RemoteEntity, string | number][], expected: string[]) => {
  seenA.length = 0;
  seenB.length = 0;
  write();
  for (const [entity, id] of refs) b.tailnet.applyRemote(entity, String(id), read(entity, id));
  assert.deepEqual(seenA, expected, 'A published');
  assert.deepEqual(seenB, expected, 'B published the same for the remote records');
};

let seq = 0;
const key = (kind: string) => `${kind}:${(++seq).toString(16).padStart(64, '0')}`;

test('users, nodes, keys and settings written on A reach B with the same changes', () => {
  let alice!: User;
  step(() => (alice = a.tailnet.users.create({ name: 'alice', email: 'alice@example.com' })), [['user', 1]], ['user-added:1']);
  assert.equal(b.tailnet.users.get(alice.id).name, 'alice');

  // Separate SQLite files number their rows apart (one PostgreSQL would not): B's own node takes id 1 there,
  // A's spacer id 1 here, so A's laptop (id 2) is new to B.
  const bOwn = b.tailnet.nodes.register({ machineKey: key('mkey'), nodeKey: key('nodekey'), hostname: 'bnode', hostinfo: {}, userId: null, tags: ['tag:x'], ephemeral: false, method: 'authkey' });
  a.tailnet.nodes.register({ machineKey: key('mkey'), nodeKey: key('nodekey'), hostname: 'spacer', hostinfo: {}, userId: null, tags: ['tag:x'], ephemeral: false, method: 'authkey' });
  let n!: Node;
  const register = () =>
    (n = a.tailnet.nodes.register({
      machineKey: key('mkey'), nodeKey: key('nodekey'), hostname: 'laptop', hostinfo: { Hostname: 'laptop', RoutableIPs: ['10.1.0.0/24'] },
      userId: alice.id, tags: [], ephemeral: false, method: 'authkey',
    }));
  step(register, [['node', 2]], ['node-added:2']);
  assert.deepEqual(b.tailnet.nodes.get(n.id), n);
  assert.equal(b.tailnet.nodes.byNodeKey(n.nodeKey)?.id, n.id, 'node key index');
  assert.equal(b.tailnet.nodes.byMachineKey(n.machineKey)?.id, n.id, 'machine key index');

  // B's uniqueness checks see A's node: its node key and name are taken on B too.
  assert.throws(
    () => b.tailnet.nodes.register({ machineKey: key('mkey'), nodeKey: n.nodeKey, hostname: 'x', hostinfo: {}, userId: null, tags: ['tag:x'], ephemeral: false, method: 'authkey' }),
    /node key already belongs to another machine/,
  );
  assert.equal(b.tailnet.nodes.get(bOwn.id).givenName, 'bnode');
  assert.throws(() => b.tailnet.nodes.rename(bOwn.id, 'laptop'), /already taken/);

  step(() => a.tailnet.nodes.approveRoutes(n.id, ['10.1.0.0/24']), [['node', n.id]], [`node-updated:${n.id}:routes`]);
  step(() => a.tailnet.nodes.rename(n.id, 'renamed'), [['node', n.id]], [`node-updated:${n.id}:name`]);
  assert.ok(b.tailnet.nodes.list().some((x) => x.givenName === 'renamed'));
  step(() => a.tailnet.nodes.report(n.id, { endpoints: [{ addr: '192.0.2.1:41641', type: 1 }] as never }), [['node', n.id]], [`node-updated:${n.id}:endpoints`]);
  step(() => a.tailnet.nodes.setExpiry(n.id, '2030-01-01T00:00:00Z'), [['node', n.id]], [`node-updated:${n.id}:expiry`]);
  step(() => a.tailnet.setPolicy('{"tagOwners":{"tag:web":["alice@example.com"]},"acls":[{"action":"accept","src":["*"],"dst":["*:*"]}]}'), [['setting', 'policy']], ['policy-changed']);
  assert.equal(b.tailnet.policy()?.text, a.tailnet.policy()?.text);
  step(() => a.tailnet.nodes.setTags(n.id, ['tag:web']), [['node', n.id]], [`node-updated:${n.id}:expiry,owner,tags`]);
  step(() => a.tailnet.setDns({ ...a.tailnet.dns(), nameservers: ['192.0.2.53'] }), [['setting', 'dns']], ['dns-changed']);
  assert.deepEqual(b.tailnet.dns().nameservers, ['192.0.2.53']);

  // A record that did not change (a notify for a row B already has) publishes nothing.
  step(() => {}, [['node', n.id], ['user', alice.id], ['setting', 'policy']], []);

  const k = a.tailnet.preAuthKeys.create({ userId: alice.id });
  step(() => {}, [['pre_auth_key', k.record.id]], []);
  assert.equal(b.tailnet.preAuthKeys.get(k.record.id).prefix, k.record.prefix);
  step(() => a.tailnet.preAuthKeys.remove(k.record.id), [['pre_auth_key', k.record.id]], []);
  assert.throws(() => b.tailnet.preAuthKeys.get(k.record.id), /not found/);

  step(() => a.tailnet.nodes.remove(n.id), [['node', n.id]], [`node-removed:${n.id}`]);
  assert.equal(b.tailnet.nodes.find(n.id), undefined);
  assert.equal(b.tailnet.nodes.byNodeKey(n.nodeKey), undefined);
  step(() => a.tailnet.users.remove(alice.id), [['user', alice.id]], [`user-removed:${alice.id}`]);
});

test('a node online on another replica is online here until it has left both', () => {
  const t = b.tailnet;
  const n = t.nodes.register({ machineKey: key('mkey'), nodeKey: key('nodekey'), hostname: 'roamer', hostinfo: {}, userId: null, tags: ['tag:x'], ephemeral: false, method: 'authkey' });
  const events: string[] = [];
  const presence: string[] = [];
  t.subscribe((c) => c.kind === 'node-updated' && events.push(`${c.fields.join(',')}:${t.nodes.isOnline(n.id)}`));
  t.nodes.watchPresence((id, online) => presence.push(`${id}:${online}`));
  t.nodes.setRemoteOnline(n.id, true);
  assert.equal(t.nodes.isOnline(n.id), true);
  t.nodes.setOnline(n.id, true); // the client moves here: already online, no news
  t.nodes.setRemoteOnline(n.id, false); // and leaves the other replica
  assert.equal(t.nodes.isOnline(n.id), true);
  assert.deepEqual(t.nodes.localOnline(), [n.id]);
  t.nodes.setOnline(n.id, false);
  assert.equal(t.nodes.isOnline(n.id), false);
  assert.ok(t.nodes.get(n.id).lastSeen, 'the replica the node left records last seen');
  assert.deepEqual(events, ['online:true', 'online:false']);
  assert.deepEqual(presence, [`${n.id}:true`, `${n.id}:false`], 'only this replica’s own connections are announced');
});

test('route auto-approval runs on the replica that made the change, not again on the one that learns of it', async () => {
  const policy = '{"tagOwners":{"tag:router":[]},"autoApprovers":{"routes":{"10.9.0.0/24":["tag:router"]}},"acls":[{"action":"accept","src":["*"],"dst":["*:*"]}]}';
  a.tailnet.setPolicy(policy);
  b.tailnet.applyRemote('setting', 'policy', read('setting', 'policy'));
  const approvers = [a, b].map(({ tailnet }) => createAutoApprover(tailnet, createPolicyView(tailnet, { serverUrl: 'https://control.example' })));
  const writesOnB: string[] = [];
  b.tailnet.subscribe((c) => !c.remote && c.kind === 'node-updated' && writesOnB.push(c.fields.join(',')));
  const router = a.tailnet.nodes.register({ machineKey: key('mkey'), nodeKey: key('nodekey'), hostname: 'router', hostinfo: { RoutableIPs: ['10.9.0.0/24'] }, userId: null, tags: ['tag:router'], ephemeral: false, method: 'authkey' });
  b.tailnet.applyRemote('node', String(router.id), read('node', router.id));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(a.tailnet.nodes.get(router.id).approvedRoutes, ['10.9.0.0/24'], 'A approved its own registration');
  assert.deepEqual(writesOnB, [], 'B made no write of its own');
  b.tailnet.applyRemote('node', String(router.id), read('node', router.id));
  assert.deepEqual(b.tailnet.nodes.get(router.id).approvedRoutes, ['10.9.0.0/24'], 'B learns the approval from A');
  for (const x of approvers) x.stop();
});
