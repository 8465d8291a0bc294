/**
 * The store contract, run on both stores: SQLite (a real file) and PostgreSQL (a throw-away PostgreSQL 15).
 * Round trips of every record kind, atomic writes, conflicts as StoreConflictError, single-use keys spent
 * once, the audit chain; then two tailnets sharing one database (as two replicas do) racing for one key
 * and for addresses. PostgreSQL only: the change log replicas read, and a server that goes away and back.
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyChain } from '../../src/audit/chain.ts';
import { defaultConfig } from '../../src/config/config.ts';
import type { Node, SshCheck } from '../../src/domain/types.ts';
import { StoreConflictError, StoreUnavailableError } from '../../src/store/errors.ts';
import { migrations } from '../../src/store/migrations.ts';
import { openPostgresStore } from '../../src/store/postgres/store.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import { createTailnet } from '../../src/state/tailnet.ts';
import { StateError } from '../../src/state/errors.ts';
import { startPostgres, type Postgres } from '../helpers/postgres.ts';

let pg: Postgres;
let dbs = 0;
before(async () => (pg = await startPostgres()));
after(() => pg?.destroy());

/** A fresh, empty store of the kind; `again()` opens another connection to the same database. */
function opener(kind: 'sqlite' | 'postgres', timeoutMs = 5000): () => Store {
  if (kind === 'sqlite') {
    const path = join(mkdtempSync(join(tmpdir(), 'tailplane-contract-')), 'db.sqlite');
    return () => openSqliteStore(path);
  }
  const url = pg.database(`contract${++dbs}`);
  return () => openPostgresStore({ url, poolSize: 4, timeoutMs, tls: 'off' });
}

const hex = (n: number) => n.toString(16).padStart(64, '0');
const node = (i: number, userId: number): Omit<Node, 'id'> => ({
  machineKey: `mkey:${hex(i)}`, nodeKey: `nodekey:${hex(i)}`, discoKey: `discokey:${hex(i)}`,
  ipv4: `100.64.0.${i}`, ipv6: `fd7a:115c:a1e0::${i}`, hostname: `host-${i}`, givenName: `host-${i}`,
  userId, tags: [], hostinfo: { OS: 'linux' }, endpoints: [{ addr: '192.0.2.1:41641', type: 2 }], expiry: null, lastSeen: '2026-01-01T00:00:00.000Z',
  createdAt: '2026-01-01T00:00:00.000Z', registerMethod: 'authkey', ephemeral: true, availableRoutes: ['10.0.0.0/24'], approvedRoutes: [],
});
const draft = (summary: string) => ({ actor: 'test', door: 'cli' as const, source: 'local', action: 'test.write', object: 'test:1', summary });

const dns = { ...defaultConfig().dns, splitDns: {}, extraRecords: [] };
const tailnetOn = (store: Store) =>
  createTailnet(store, { prefixes: { v4: '100.64.0.0/24', v6: 'fd7a:115c:a1e0::/120', allocation: 'sequential' }, defaultDns: dns, expirySeconds: 0, sshCheckTimeoutMs: 60_000 });

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`${kind} store`, () => {
    test('every record kind survives a reopen exactly as written', () => {
      const open = opener(kind);
      const store = open();
      const ids = store.write((tx) => {
        const user = tx.insertUser({ name: 'alice', displayName: 'Alice', email: 'alice@example.com', createdAt: '2026-01-01T00:00:00.000Z', providerId: 'https://idp|alice' });
        const n = tx.insertNode(node(1, user));
        const key = tx.insertPreAuthKey({ prefix: 'p1', userId: user, reusable: false, ephemeral: true, used: false, tags: [], expiration: null, createdAt: 'c', description: 'd' }, 'h1');
        const api = tx.insertApiKey({ prefix: 'a1', role: 'auditor', expiration: null, lastSeen: null, createdAt: 'c' }, 'h2');
        const client = tx.insertOAuthClient({ prefix: 'o1', scopes: ['devices:read'], description: '', createdAt: 'c' }, 'h3');
        tx.insertOAuthToken({ prefix: 't1', clientId: client, scopes: ['devices:read'], expiresAt: '2999-01-01T00:00:00.000Z' }, 'h4');
        tx.putSetting('dns', { magicDns: false });
        tx.putSetting('dns', { magicDns: true });
        const check: SshCheck = {
          id: 'chk1', srcNodeId: n, srcNode: 'a', srcUserId: user, srcUser: 'alice', dstNodeId: n, dstNode: 'b', sshUser: 'root', localUser: 'root',
          state: 'pending', periodMs: 3_600_000, createdAt: 'c', deadline: 'd', decidedAt: null, decidedBy: null, validUntil: null,
        };
        tx.putSshCheck(check);
        tx.updateNode({ ...node(1, user), id: n, approvedRoutes: ['10.0.0.0/24'] });
        return { user, n, key, api, check };
      });
      store.close();
      const loaded = open().load();
      assert.deepEqual(loaded.users.map((u) => [u.id, u.name, u.providerId]), [[ids.user, 'alice', 'https://idp|alice']]);
      assert.deepEqual(loaded.nodes, [{ ...node(1, ids.user), id: ids.n, approvedRoutes: ['10.0.0.0/24'] }]);
      assert.deepEqual(loaded.preAuthKeys.map((k) => [k.record.reusable, k.record.ephemeral, k.record.used, k.hash]), [[false, true, false, 'h1']]);
      assert.deepEqual(loaded.apiKeys.map((k) => [k.record.role, k.hash]), [['auditor', 'h2']]);
      assert.deepEqual(loaded.oauthClients.map((c) => c.record.scopes), [['devices:read']]);
      assert.equal(loaded.oauthTokens.length, 1);
      assert.deepEqual(loaded.settings, { dns: { magicDns: true } });
      assert.deepEqual(loaded.sshChecks, [ids.check]);
    });

    test('a write that throws leaves nothing; a unique clash is a StoreConflictError naming table.column', () => {
      const store = opener(kind)();
      const user = store.write((tx) => tx.insertUser({ name: 'bob', displayName: '', email: '', createdAt: 'c' }));
      store.write((tx) => tx.insertNode(node(1, user)));
      assert.throws(() => store.write((tx) => (tx.insertNode(node(2, user)), tx.putSetting('x', 1), tx.updateUser({ id: 999, name: 'z', displayName: '', email: '', createdAt: 'c' }))), /users 999 not found/);
      assert.throws(
        () => store.write((tx) => tx.insertNode({ ...node(3, user), ipv4: '100.64.0.1' })),
        (err: unknown) => err instanceof StoreConflictError && err.constraint === 'nodes.ipv4',
      );
      assert.throws(() => store.write((tx) => tx.insertUser({ name: 'bob', displayName: '', email: '', createdAt: 'c' })), (err: unknown) => err instanceof StoreConflictError && err.constraint === 'users.name');
      const loaded = store.load();
      assert.equal(loaded.nodes.length, 1);
      assert.deepEqual(loaded.settings, {});
      // A failed inner write inside an outer transaction rolls back alone when caught.
      store.transaction(() => {
        store.write((tx) => tx.putSetting('kept', true));
        assert.throws(() => store.write((tx) => (tx.putSetting('lost', true), tx.insertNode({ ...node(4, user), ipv6: 'fd7a:115c:a1e0::1' }))), StoreConflictError);
      });
      assert.deepEqual(store.load().settings, { kept: true });
      store.close();
    });

    test("a deleted node's id is never given again, not even the highest", () => {
      const store = opener(kind)();
      const user = store.write((tx) => tx.insertUser({ name: 'carol', displayName: '', email: '', createdAt: 'c' }));
      const first = store.write((tx) => tx.insertNode(node(1, user)));
      const highest = store.write((tx) => tx.insertNode(node(2, user)));
      store.write((tx) => tx.deleteNode(highest));
      const next = store.write((tx) => tx.insertNode(node(3, user)));
      assert.ok(next > highest, `a node joining after node ${highest} left got id ${next}`);
      assert.deepEqual(store.load().nodes.map((n) => n.id).sort((a, b) => a - b), [first, next]);
      store.close();
    });

    test('a single-use key is spent once, whoever holds a copy', () => {
      const open = opener(kind);
      const a = open();
      const b = open();
      const id = a.write((tx) => tx.insertPreAuthKey({ prefix: 'p', userId: null, reusable: false, ephemeral: false, used: false, tags: ['tag:x'], expiration: null, createdAt: 'c', description: '' }, 'h'));
      b.write((tx) => tx.usePreAuthKey(id));
      assert.throws(() => a.write((tx) => tx.usePreAuthKey(id)), (err: unknown) => err instanceof StoreConflictError && err.constraint === 'pre_auth_keys.used');
      assert.equal(a.load().preAuthKeys[0]!.record.used, true);
      a.close();
      b.close();
    });

    test('the audit chain verifies after appends and a prune, also from two writers', () => {
      const open = opener(kind);
      const a = open();
      const b = open();
      for (let i = 0; i < 6; i++) (i % 2 ? a : b).write((tx) => tx.appendAudit(draft(`e${i}`), `2026-01-0${i + 1}T00:00:00.000Z`));
      assert.deepEqual(verifyChain(a.audit.anchor(), a.audit.all()), { ok: true, entries: 6, anchor: { id: 0, hash: '' } });
      assert.deepEqual(a.audit.list({ object: 'test:1', after: 2, limit: 2 }).map((e) => e.summary), ['e2', 'e3']);
      const removed = b.audit.prune('2026-01-03T00:00:00.000Z', (n) => draft(`pruned ${n}`));
      assert.equal(removed, 2);
      const result = verifyChain(a.audit.anchor(), a.audit.all());
      assert.ok(result.ok && result.entries === 5 && result.anchor.id === 2, JSON.stringify(result));
      a.close();
      b.close();
    });

    test('two tailnets on one database: one single-use key admits one node; racing joins get distinct addresses', () => {
      const open = opener(kind);
      const stores = [open(), open(), open()];
      const one = tailnetOn(stores[0]!);
      const user = one.users.create({ name: 'carol' });
      const { key } = one.preAuthKeys.create({ userId: user.id });
      // Loaded after the key existed: each holds an unused copy of it.
      const [two, three] = [tailnetOn(stores[1]!), tailnetOn(stores[2]!)];
      two.preAuthKeys.consume(key);
      assert.throws(() => three.preAuthKeys.consume(key), (err: unknown) => err instanceof StateError && /already used/.test(err.message));
      // Both allocate sequentially from their own memory: every second choice clashes in the database and is retried.
      const nodes: Node[] = [];
      for (let i = 0; i < 10; i++) {
        for (const [t, k] of [[two, 1], [three, 2]] as const) {
          nodes.push(t.nodes.register({ machineKey: `mkey:${hex(i * 2 + k)}`, nodeKey: `nodekey:${hex(i * 2 + k)}`, hostname: 'laptop', hostinfo: {}, userId: user.id, tags: [], ephemeral: false, method: 'authkey' }));
        }
      }
      assert.equal(new Set(nodes.map((n) => n.ipv4)).size, 20);
      assert.equal(new Set(nodes.map((n) => n.ipv6)).size, 20);
      assert.equal(new Set(nodes.map((n) => n.givenName)).size, 20);
      for (const s of stores) s.close();
    });

    test('group commit: grouped writes commit together after the turn; a failing one is undone alone; a durable write goes after the group', async () => {
      const open = opener(kind);
      const [store, other] = [open(), open()];
      const user = store.write((tx) => tx.insertUser({ name: 'erin', displayName: '', email: '', createdAt: 'c' }));
      const first = store.writeGrouped((tx) => tx.insertNode(node(1, user)));
      const second = store.writeGrouped((tx) => tx.insertNode(node(2, user)));
      // The clash shows at once on SQLite; on PostgreSQL (whose insert waits for nothing) it rejects that write's
      // promise when the group commits. Either way it fails alone.
      const clash = () => store.writeGrouped((tx) => (tx.putSetting('lost', true), tx.insertNode({ ...node(3, user), ipv4: '100.64.0.1' })));
      const clashed = kind === 'sqlite' ? assert.throws(clash, StoreConflictError) : clash().durable;
      assert.equal(other.load().nodes.length, 0, 'nothing is visible before the group commits');
      await first.durable;
      // One commit for the turn: the second write is visible as soon as the first is durable.
      assert.deepEqual(other.load().nodes.map((n) => n.id), [first.result, second.result]);
      if (clashed) await assert.rejects(clashed, (err: unknown) => err instanceof StoreConflictError && err.constraint === 'nodes.ipv4');
      assert.deepEqual(other.load().settings, {});
      // A durable write commits the open group first: both are visible the moment it returns.
      const grouped = store.writeGrouped((tx) => tx.putSetting('grouped', 1));
      store.write((tx) => tx.putSetting('durable', 2));
      assert.deepEqual(other.load().settings, { grouped: 1, durable: 2 });
      await grouped.durable;
      store.close();
      other.close();
    });
  });
}

test('sqlite: a database of schema 7 keeps its nodes through migration 8, whose ids then grow only', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'tailplane-contract-')), 'db.sqlite');
  const db = new Database(path);
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  migrations.slice(0, 7).forEach((sql, i) => (db.exec(sql), db.prepare('INSERT INTO schema_migrations VALUES (?, ?)').run(i + 1, 'c')));
  db.prepare("INSERT INTO users (id, name, created_at) VALUES (1, 'dave', 'c')").run();
  const insert = db.prepare(`INSERT INTO nodes (id, machine_key, node_key, ipv4, ipv6, hostname, given_name, user_id, created_at, register_method)
    VALUES (?, ?, ?, ?, ?, ?, ?, 1, 'c', 'authkey')`);
  for (const id of [3, 7]) insert.run(id, `mkey:${hex(id)}`, `nodekey:${hex(id)}`, `100.64.0.${id}`, `fd7a:115c:a1e0::${id}`, `h${id}`, `h${id}`);
  db.close();
  const store = openSqliteStore(path);
  assert.deepEqual(store.load().nodes.map((n) => [n.id, n.givenName]), [[3, 'h3'], [7, 'h7']]);
  store.write((tx) => tx.deleteNode(7));
  assert.equal(store.write((tx) => tx.insertNode(node(9, 1))), 8);
  store.close();
});

describe('postgres only', () => {
  test('a group commit that fails is undone in memory: the node goes, its removal is published, nothing is stored', async () => {
    const url = pg.database(`contract${++dbs}`);
    const store = openPostgresStore({ url, poolSize: 4, timeoutMs: 5000, tls: 'off' });
    const t = tailnetOn(store);
    const user = t.users.create({ name: 'frank' });
    const seen: string[] = [];
    t.subscribe((c) => seen.push(c.kind));
    // The group's audit entries go in at its COMMIT, for all its writes at once: refusing them fails the whole group.
    pg.psql(`CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql;
      CREATE TRIGGER refuse BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse();`, new URL(url).pathname.slice(1));
    const joins = [9, 10].map((i) => t.nodes.registerGrouped({ machineKey: `mkey:${hex(i)}`, nodeKey: `nodekey:${hex(i)}`, hostname: 'laptop', hostinfo: {}, userId: user.id, tags: [], ephemeral: false, method: 'authkey' }));
    assert.deepEqual(joins.map((j) => t.nodes.find(j.node.id)?.id), joins.map((j) => j.node.id));
    for (const j of joins) await assert.rejects(j.durable, /refused by the test/);
    assert.deepEqual(joins.map((j) => t.nodes.find(j.node.id)), [undefined, undefined]);
    assert.deepEqual(seen.filter((k) => k.startsWith('node-')), ['node-added', 'node-added', 'node-removed', 'node-removed']);
    assert.deepEqual(store.load().nodes, []);
    store.close();
  });

  test("a grouped join that clashes with another replica's node at its commit fails alone, and is retried with the next address", async () => {
    const open = opener('postgres');
    const [a, b] = [open(), open()];
    const one = tailnetOn(a);
    const user = one.users.create({ name: 'heidi' });
    // Loaded before B's node exists (no change bus here): A allocates B's address again.
    const two = tailnetOn(b);
    const theirs = two.nodes.register({ machineKey: `mkey:${hex(1)}`, nodeKey: `nodekey:${hex(1)}`, hostname: 'theirs', hostinfo: {}, userId: user.id, tags: [], ephemeral: false, method: 'authkey' });
    const seen: string[] = [];
    one.subscribe((c) => seen.push(c.kind));
    const join = (i: number, hostname: string) => one.nodes.registerGrouped({ machineKey: `mkey:${hex(i)}`, nodeKey: `nodekey:${hex(i)}`, hostname, hostinfo: {}, userId: user.id, tags: [], ephemeral: false, method: 'authkey' });
    const clashing = join(2, 'mine');
    const other = join(3, 'other');
    assert.equal(clashing.node.ipv4, theirs.ipv4, 'allocated from a view that lacks the other replica’s node');
    const [stored, otherStored] = await Promise.all([clashing.durable, other.durable]);
    assert.notEqual(stored.ipv4, theirs.ipv4);
    assert.notEqual(stored.id, clashing.node.id);
    assert.equal(otherStored, other.node, 'the other write of the group committed as it was');
    assert.equal(one.nodes.find(clashing.node.id), undefined);
    assert.equal(one.nodes.find(stored.id)?.hostname, 'mine');
    assert.deepEqual(seen.filter((k) => k.startsWith('node-')), ['node-added', 'node-added', 'node-removed', 'node-added']);
    const rows = open().load().nodes;
    assert.deepEqual(rows.map((n) => n.hostname).sort(), ['mine', 'other', 'theirs']);
    assert.equal(new Set(rows.map((n) => n.ipv4)).size, 3);
    a.close();
    b.close();
  });

  test('a grouped removal (an ephemeral logout) whose commit fails is undone: the node is back, published again, still stored', async () => {
    const url = pg.database(`contract${++dbs}`);
    const store = openPostgresStore({ url, poolSize: 4, timeoutMs: 5000, tls: 'off' });
    const t = tailnetOn(store);
    const user = t.users.create({ name: 'grace' });
    const node = t.nodes.register({ machineKey: `mkey:${hex(8)}`, nodeKey: `nodekey:${hex(8)}`, hostname: 'runner', hostinfo: {}, userId: user.id, tags: [], ephemeral: true, method: 'authkey' });
    // The group's statements go to PostgreSQL at its commit, at the end of the turn: a trigger makes that fail.
    pg.psql(`CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql;
      CREATE TRIGGER refuse BEFORE DELETE ON nodes FOR EACH ROW EXECUTE FUNCTION refuse();`, new URL(url).pathname.slice(1));
    const seen: string[] = [];
    t.subscribe((c) => seen.push(c.kind));
    const { durable } = t.nodes.removeGrouped(node.id);
    assert.equal(t.nodes.find(node.id), undefined);
    await assert.rejects(durable, /refused by the test/);
    assert.equal(t.nodes.find(node.id)?.hostname, 'runner');
    assert.deepEqual(seen, ['node-removed', 'node-added']);
    assert.deepEqual(store.load().nodes.map((n) => n.id), [node.id]);
    store.close();
  });

  test('every transaction logs what it touched, in commit order, with its origin; SharedLog reads it', () => {
    const open = opener('postgres');
    const a = open();
    const b = open();
    const log = a.shared!;
    assert.notEqual(log.origin, b.shared!.origin);
    const start = log.lastSeq();
    const user = a.write((tx) => tx.insertUser({ name: 'dave', displayName: '', email: '', createdAt: 'c' }));
    const n = b.write((tx) => tx.insertNode(node(1, user)), { soft: true });
    b.write((tx) => tx.putSetting('policy', { acls: [] }));
    a.write((tx) => tx.deleteNode(n));
    const token = b.write((tx) => {
      const client = tx.insertOAuthClient({ prefix: 'o', scopes: [], description: '', createdAt: 'c' }, 'h');
      return [client, tx.insertOAuthToken({ prefix: 't', clientId: client, scopes: [], expiresAt: '2000-01-01T00:00:00.000Z' }, 'h')];
    });
    // The expired tokens' ids are known only to the database, which logs them itself.
    a.write((tx) => tx.deleteExpiredOAuthTokens('2026-01-01T00:00:00.000Z'));
    const rows = log.since(start, 100);
    assert.deepEqual(rows.map((r) => [r.entity, r.id, r.origin === log.origin ? 'a' : 'b']), [
      ['user', String(user), 'a'], ['node', String(n), 'b'], ['setting', 'policy', 'b'], ['node', String(n), 'a'],
      ['oauth_client', String(token[0]), 'b'], ['oauth_token', String(token[1]), 'b'], ['oauth_token', String(token[1]), 'a'],
    ]);
    assert.ok(rows.every((r, i) => i === 0 || r.seq > rows[i - 1]!.seq));
    assert.equal(log.lastSeq(), rows.at(-1)!.seq);
    assert.deepEqual(log.read('user', [String(user)]), new Map([[String(user), a.load().users[0]]]));
    assert.deepEqual(log.read('setting', ['policy', 'dns']), new Map([['policy', { acls: [] }]]));
    assert.deepEqual(log.read('node', [String(n)]), new Map());
    log.query('CREATE TABLE IF NOT EXISTS scratch (k TEXT PRIMARY KEY)');
    log.query('INSERT INTO scratch VALUES ($1)', ['x']);
    log.announce('presence', ['x']);
    assert.deepEqual(log.since(rows.at(-1)!.seq, 10).map((r) => [r.entity, r.id]), [['presence', 'x']]);
    a.close();
    b.close();
  });

  test('PostgreSQL going away: calls fail within the deadline, then at once; the store comes back by itself', async () => {
    const store = opener('postgres', 1500)();
    store.write((tx) => tx.putSetting('before', 1));
    await pg.stop();
    try {
      assert.throws(() => store.write((tx) => tx.putSetting('during', 1)), StoreUnavailableError);
      const t = performance.now();
      assert.throws(() => store.write((tx) => tx.putSetting('during', 2)), /store unavailable: .*reconnecting/);
      assert.ok(performance.now() - t < 50, 'fails fast while down');
      assert.equal(store.healthy(), false);
    } finally {
      await pg.start();
    }
    const deadline = Date.now() + 10_000;
    while (!store.healthy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.equal(store.healthy(), true);
    store.write((tx) => tx.putSetting('after', 1));
    assert.deepEqual(store.load().settings, { before: 1, after: 1 });
    store.close();
  });
});
