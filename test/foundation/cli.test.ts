/** The `tailplane` CLI against a running server: the headscale-style round trip, table and JSON output. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { api, cli, spawnServer, type ChildServer } from '../helpers/server.ts';

let server: ChildServer;
before(async () => {
  server = await spawnServer();
});
after(async () => {
  await server.stop();
});

function ok(...args: string[]): string {
  const r = cli(server, ...args);
  assert.equal(r.status, 0, `tailplane ${args.join(' ')} failed:\n${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}
const json = (...args: string[]) => JSON.parse(ok(...args, '-o', 'json'));

test('users and pre-auth keys round trip', () => {
  assert.match(ok('policy', 'get'), /^No policy is set: every node may reach every other/, 'not an empty line');
  assert.match(ok('users', 'create', 'alice', '--email', 'alice@example.com'), /created user alice/);
  const users = json('users', 'list');
  assert.equal(users.length, 1);
  assert.equal(users[0].email, 'alice@example.com');

  const reusable = ok('preauthkeys', 'create', '-u', 'alice', '--reusable');
  assert.match(reusable, /^tpkey-auth-[a-z0-9]{12}-\S+$/);
  const ephemeral = json('preauthkeys', 'create', '-u', 'alice', '--ephemeral');
  assert.equal(ephemeral.ephemeral, true);
  // Tags must be defined in the policy's tagOwners; a tags-only key (the admin's) may carry any defined tag.
  const policy = join(server.dataDir, 'tags.hujson');
  writeFileSync(policy, '{ "tagOwners": { "tag:ci": [], "tag:server": [] } }');
  ok('policy', 'set', '-f', policy);
  const tagged = json('preauthkeys', 'create', '--tags', 'tag:ci,tag:server');
  assert.deepEqual(tagged.aclTags, ['tag:ci', 'tag:server']);
  assert.equal(tagged.user, null);
  const expiring = json('preauthkeys', 'create', '-u', 'alice', '-e', '2h');
  const lifetime = Date.parse(expiring.expiration) - Date.now();
  assert.ok(lifetime > 7_000_000 && lifetime <= 7_200_000, `2h key expires in ${lifetime} ms`);

  const keys = json('preauthkeys', 'list');
  assert.equal(keys.length, 4);
  assert.ok(keys.every((k: { key: string }) => k.key.endsWith('-***')), 'secrets are never listed');
  ok('preauthkeys', 'expire', '--id', expiring.id);
  const expired = json('preauthkeys', 'list').find((k: { id: string }) => k.id === expiring.id);
  assert.ok(Date.parse(expired.expiration) <= Date.now());
  ok('preauthkeys', 'delete', '--id', expiring.id);
  assert.equal(json('preauthkeys', 'list').length, 3);
  assert.match(ok('preauthkeys', 'list'), /^ID\s+Key\s+Reusable/);
});

test('API keys: create, list, expire, delete', () => {
  const key = ok('apikeys', 'create', '-e', '30d');
  const prefix = key.split('-')[2]!;
  assert.ok(json('apikeys', 'list').some((k: { prefix: string }) => k.prefix === prefix));
  ok('apikeys', 'expire', '--prefix', prefix);
  const denied = cli({ url: server.url, apiKey: key }, 'users', 'list');
  assert.equal(denied.status, 1);
  assert.match(denied.stderr, /invalid, expired or revoked API key/);
  ok('apikeys', 'delete', '--prefix', prefix);
  assert.ok(!json('apikeys', 'list').some((k: { prefix: string }) => k.prefix === prefix));
});

test('API key roles: --role sets it, the listing shows it, and the server enforces it', () => {
  const network = ok('apikeys', 'create', '--role', 'network-admin');
  const prefix = network.split('-')[2]!;
  assert.equal(json('apikeys', 'list').find((k: { prefix: string }) => k.prefix === prefix).role, 'network-admin');
  assert.equal(json('apikeys', 'list').find((k: { prefix: string }) => k.prefix !== prefix).role, 'admin', 'the default role');
  const as = (...args: string[]) => cli({ url: server.url, apiKey: network }, ...args);
  assert.equal(as('dns', 'get').status, 0, 'every role reads');
  const denied = as('users', 'create', 'carol');
  assert.equal(denied.status, 1);
  assert.match(denied.stderr, /forbidden: the network-admin role may not change users \(needs admin or it-admin\)/);
  const bad = cli(server, 'apikeys', 'create', '--role', 'root');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /invalid role "root": use one of admin, network-admin, it-admin, auditor/);
});

test('nodes list on an empty tailnet prints an empty table, not an error', () => {
  assert.match(ok('nodes', 'list'), /^ID\s+Hostname\s+Name/);
  assert.deepEqual(json('nodes', 'list'), []);
  assert.deepEqual(json('routes', 'list'), []);
  assert.deepEqual(JSON.parse(ok('nodes', 'list', '-o', 'yaml') === '[]' ? '[]' : 'null'), []);
});

test('policy, health, version and errors', async () => {
  ok('users', 'rename', 'alice', '--new-name', 'alice2');
  assert.equal(json('users', 'list')[0].name, 'alice2');
  assert.deepEqual(json('health'), { databaseConnectivity: true, status: 'ok', store: 'ok' });
  assert.match(ok('version'), /^\d+\.\d+\.\d+/);
  const unknown = cli(server, 'users', 'frobnicate');
  assert.equal(unknown.status, 2);
  const badFlag = cli(server, 'users', 'list', '--bogus');
  assert.equal(badFlag.status, 2);
  assert.match(badFlag.stderr, /unknown flag --bogus/);
  const dup = cli(server, 'users', 'create', 'alice2');
  assert.equal(dup.status, 1);
  assert.match(dup.stderr, /already exists/);
  // Schema words stay out of messages: an id is a number.
  const badId = cli(server, 'preauthkeys', 'expire', '-i', 'abc');
  assert.equal(badId.status, 2);
  assert.match(badId.stderr, /^tailplane: key id must be a number, not "abc"/);
  const viaApi = await api(server, 'POST', '/api/v1/preauthkey/expire', { id: 'abc' });
  assert.deepEqual([viaApi.status, viaApi.json.message], [400, 'invalid request: id must be a number']);
  const jsonErr = cli(server, 'users', 'create', 'alice2', '-o', 'json');
  assert.deepEqual(JSON.parse(jsonErr.stdout), { error: 'user "alice2" already exists' });
});
