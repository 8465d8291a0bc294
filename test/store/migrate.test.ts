/**
 * `tailplane migrate`: a real SQLite data dir (users, a node registered over Noise, keys, a policy, the audit
 * log) moved into PostgreSQL; a server on PostgreSQL then serves the same tailnet and the audit chain verifies.
 * A second migration into the now non-empty database is refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { noisePost } from '../control/noise-client.ts';
import { startPostgres, type Postgres } from '../helpers/postgres.ts';
import { api, cli, spawnServer, tempDir } from '../helpers/server.ts';

let db: Postgres;
before(async () => (db = await startPostgres()));
after(() => db?.destroy());

test('an SQLite tailnet moves to PostgreSQL whole: same users, nodes, keys, policy and a verifying audit chain', async () => {
  const sqliteEnv = { TAILPLANE_STORE_TYPE: 'sqlite' };
  const old = await spawnServer({ env: sqliteEnv });
  const user = (await api(old, 'POST', '/api/v1/user', { name: 'alice', email: 'alice@example.com' })).json.user;
  const { key } = (await api(old, 'POST', '/api/v1/preauthkey', { user: user.id, reusable: true })).json.preAuthKey;
  const { publicKey } = (await (await fetch(`${old.url}/key?v=130`)).json()) as { publicKey: string };
  const reg = await noisePost(Number(new URL(old.url).port), Buffer.from(publicKey.slice('mkey:'.length), 'hex'), '/machine/register', {
    Version: 130, NodeKey: `nodekey:${randomBytes(32).toString('hex')}`, Auth: { AuthKey: key }, Hostinfo: { Hostname: 'laptop' },
  });
  assert.ok(reg.status === 200 && !reg.json.Error, JSON.stringify(reg.json));
  const policy = '{"acls":[{"action":"accept","src":["alice@example.com"],"dst":["*:22"]}]}';
  assert.equal((await api(old, 'PUT', '/api/v1/policy', { policy })).status, 200);
  const before = {
    users: (await api(old, 'GET', '/api/v1/user')).json,
    nodes: (await api(old, 'GET', '/api/v1/node')).json,
    keys: (await api(old, 'GET', `/api/v1/preauthkey?user=${user.id}`)).json,
    policy: (await api(old, 'GET', '/api/v1/policy')).json.policy,
  };
  const audit = cli(old, 'audit', 'list', '-o', 'json');
  await old.stop();

  const moved = cli({ url: '', apiKey: '' }, 'migrate', '--from', `sqlite:${old.dataDir}`, '--to', `postgres:${db.url}`);
  assert.equal(moved.status, 0, moved.stderr);
  assert.match(moved.stdout, /migrated .*tailplane\.sqlite to PostgreSQL: \d+ rows \(users 1, .*nodes 1, .*counts verified/);
  const again = cli({ url: '', apiKey: '' }, 'migrate', '--from', `sqlite:${old.dataDir}`, '--to', db.url);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /^tailplane: the target database is not empty \(users has 1 rows\)/);

  const dir = tempDir();
  copyFileSync(join(old.dataDir, 'admin-api-key'), join(dir, 'admin-api-key'));
  const moved2 = await spawnServer({ dataDir: dir, env: { TAILPLANE_STORE_TYPE: 'postgres', TAILPLANE_STORE_POSTGRES_URL: db.url } });
  try {
    assert.deepEqual((await api(moved2, 'GET', '/api/v1/user')).json, before.users);
    assert.deepEqual((await api(moved2, 'GET', '/api/v1/node')).json, before.nodes);
    assert.deepEqual((await api(moved2, 'GET', `/api/v1/preauthkey?user=${user.id}`)).json, before.keys);
    assert.equal((await api(moved2, 'GET', '/api/v1/policy')).json.policy, before.policy);
    // The chain continues across the move: the old entries, then this server's own.
    assert.equal(cli(moved2, 'audit', 'list', '-o', 'json').stdout, audit.stdout);
    const bob = (await api(moved2, 'POST', '/api/v1/user', { name: 'bob' })).json.user;
    assert.equal(Number(bob.id), Number(user.id) + 1, 'ids continue after the copied ones');
    const verify = cli(moved2, 'audit', 'verify');
    assert.equal(verify.status, 0, verify.stderr);
    const entries = (JSON.parse(audit.stdout) as unknown[]).length;
    assert.ok(entries >= 4, audit.stdout);
    assert.equal(verify.stdout.trim(), `audit log intact: ${entries + 1} entries`);
  } finally {
    await moved2.stop();
  }
});
