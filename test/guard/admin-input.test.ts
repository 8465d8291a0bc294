/**
 * The admin doors check what they are given and say what is wrong: prototype keys and bad JSON, text with
 * control characters or of absurd length (and the CLI never prints a control character raw), loose times,
 * policies nested absurdly deep; and failed authentication is logged and rate-limited per source.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { api, cliAsync, spawnServer, tempDir, type ChildServer } from '../helpers/server.ts';
import { dialNoise, h2Request, h2Session } from '../control/noise-client.ts';

let server: ChildServer;

before(async () => {
  server = await spawnServer();
});
after(async () => {
  await server.stop();
});

test('a body with "__proto__" or broken JSON is a 400 that says what is wrong', async () => {
  const proto = await api(server, 'POST', '/api/v1/user', '{"name":"p","__proto__":{"admin":true}}');
  assert.equal(proto.status, 400);
  assert.match(proto.json.message, /request body has the key "__proto__", which is not allowed/);
  const nested = await api(server, 'POST', '/api/v1/user', '{"name":"p","x":{"constructor":{"prototype":{}}}}');
  assert.equal(nested.status, 400);
  assert.match(nested.json.message, /"constructor"/);
  const broken = await api(server, 'POST', '/api/v1/user', '{"name":');
  assert.equal(broken.status, 400);
  assert.match(broken.json.message, /^request body is not valid JSON: /);
});

test('display names and e-mails with control characters or of absurd length are refused', async () => {
  for (const [body, message] of [
    [{ name: 'esc', displayName: 'Eve\u001b[2J' }, /displayName contains a control character/],
    [{ name: 'nul', displayName: 'a\u0000b' }, /displayName contains a control character/],
    [{ name: 'big', email: `${'a'.repeat(900_000)}@example.com` }, /email is 900012 characters long: at most 254/],
    [{ name: 'long', displayName: 'x'.repeat(257) }, /at most 256/],
    [{ name: 'space', email: 'a b@example.com' }, /email must not contain spaces/],
  ] as const) {
    const res = await api(server, 'POST', '/api/v1/user', body);
    assert.equal(res.status, 400, JSON.stringify(body).slice(0, 80));
    assert.match(res.json.message, message);
  }
  const ok = await api(server, 'POST', '/api/v1/user', { name: 'fine', displayName: 'Zoë Ünïcode', email: 'zoe@example.com' });
  assert.equal(ok.status, 200);
  const update = await api(server, 'PUT', `/api/v1/user/${ok.json.user.id}`, { displayName: 'x\u0007' });
  assert.equal(update.status, 400);
  assert.equal((await api(server, 'GET', '/api/v1/user?name=fine')).json.users[0].displayName, 'Zoë Ünïcode');
});

test('the CLI escapes control characters in tables: a hostname cannot drive the terminal', async () => {
  const key = (await (await fetch(`${server.url}/key?v=130`)).json()) as { publicKey: string };
  const user = (await api(server, 'POST', '/api/v1/user', { name: 'owner' })).json.user;
  const authKey = (await api(server, 'POST', '/api/v1/preauthkey', { user: user.id })).json.preAuthKey.key;
  const client = await dialNoise(Number(new URL(server.url).port), Buffer.from(key.publicKey.slice('mkey:'.length), 'hex'));
  const session = h2Session(client);
  try {
    const body = { Version: 130, NodeKey: `nodekey:${randomBytes(32).toString('hex')}`, Auth: { AuthKey: authKey }, Hostinfo: { Hostname: 'evil\u001b[2J\u001b]0;pwned\u0007' } };
    assert.equal((await h2Request(session, '/machine/register', JSON.stringify(body))).status, 200);
  } finally {
    session.destroy();
    client.conn.destroy();
  }
  const out = await cliAsync(server, 'nodes', 'list');
  assert.equal(out.status, 0, out.stderr);
  assert.doesNotMatch(out.stdout, /[\u0000-\u0009\u000b-\u001f\u007f]/, 'no raw control character reaches the terminal');
  assert.match(out.stdout, /evil\\x1b\[2J\\x1b\]0;pwned\\x07/);
});

test('times are RFC 3339 with a zone or a duration, nothing else', async () => {
  const user = (await api(server, 'POST', '/api/v1/user', { name: 'timer' })).json.user;
  for (const expiration of ['', '2099', 'Dec 25 2099', '2099-12-25T00:00:00', '2099-12-25', '2099-02-30T00:00:00Z', '1 hour', '90days']) {
    const res = await api(server, 'POST', '/api/v1/preauthkey', { user: user.id, expiration });
    assert.equal(res.status, 400, `expiration ${JSON.stringify(expiration)} was accepted`);
    assert.match(res.json.message, /expected an RFC 3339 time with a zone .* or a duration/);
  }
  const zoned = await api(server, 'POST', '/api/v1/preauthkey', { user: user.id, expiration: '2099-12-25T10:00:00+02:00' });
  assert.equal(zoned.json.preAuthKey.expiration, '2099-12-25T08:00:00.000Z');
  const relative = await api(server, 'POST', '/api/v1/preauthkey', { user: user.id, expiration: '90d' });
  const days = (Date.parse(relative.json.preAuthKey.expiration) - Date.now()) / 86_400_000;
  assert.ok(days > 89.9 && days <= 90, `90d is ${days} days`);
  assert.equal((await api(server, 'POST', '/api/v1/preauthkey', { user: user.id, expiration: null })).json.preAuthKey.expiration, null);
  assert.equal((await api(server, 'POST', '/api/v1/apikey', { expiration: '' })).status, 400);
  const node = (await api(server, 'GET', '/api/v1/node')).json.nodes[0];
  assert.equal((await api(server, 'POST', `/api/v1/node/${node.id}/expire`, { expiry: 'Dec 25 2099' })).status, 400);
  const usage = await cliAsync(server, 'preauthkeys', 'create', '--user', 'timer', '--expiration', '2099');
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /invalid expiration "2099": use an RFC 3339 time with a zone/);
});

test('a policy nested 100,000 deep is refused with file:line:col, by the API and offline', async () => {
  const deep = `{"acls": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
  for (const path of ['/api/v1/policy/diff', '/api/v1/policy']) {
    const res = await api(server, path.endsWith('diff') ? 'POST' : 'PUT', path, { policy: deep });
    assert.equal(res.status, 400, `${path}: ${JSON.stringify(res.json).slice(0, 200)}`);
    assert.match(JSON.stringify(res.json), /:1:73: nested deeper than 64 levels/);
  }
  const file = join(tempDir(), 'deep.hujson');
  writeFileSync(file, deep);
  const offline = await cliAsync(server, 'policy', 'check', '--offline', '--file', file);
  assert.equal(offline.status, 1);
  assert.match(offline.stdout + offline.stderr, /deep\.hujson:1:73: nested deeper than 64 levels/);
  const diff = await cliAsync(server, 'policy', 'diff', '--file', file);
  assert.match(diff.stdout + diff.stderr, /:1:73: nested deeper than 64 levels/);
  assert.doesNotMatch(diff.stdout + diff.stderr, /undefined/);
});

// Last: it locks this test's source out of the admin API for the rest of the minute.
test('failed authentications are logged without the secret and rate-limited per source', async () => {
  const wrong = { url: server.url, apiKey: 'tpkey-api-aaaaaaaaaaaa-thisisnotthesecret' };
  for (let i = 0; i < 10; i++) assert.equal((await api(wrong, 'GET', '/api/v1/user')).status, 401);
  const limited = await api(wrong, 'GET', '/api/v1/user');
  assert.equal(limited.status, 429);
  assert.match(limited.json.message, /too many failed authentications from 127\.0\.0\.1: try again in \d+ s/);
  assert.equal((await api(server, 'GET', '/api/v1/user')).status, 429, 'a valid key from that source waits too');
  assert.equal((await fetch(`${server.url}/health`)).status, 200, 'public paths still answer');
  const lines = server.log().split('\n').filter((l) => l.includes('authentication failed'));
  assert.equal(lines.length, 10);
  assert.match(lines[0]!, /"source":"127\.0\.0\.1"/);
  assert.match(lines[0]!, /"key":"tpkey-api-aaaaaaaaaaaa"/);
  assert.doesNotMatch(server.log(), /thisisnotthesecret/);
  // API v2 counts its own failures the same way: Basic credentials that do not authenticate, then 429.
  const basic = { authorization: `Basic ${Buffer.from('tpkey-api-bbbbbbbbbbbb-alsonotasecret:').toString('base64')}` };
  for (let i = 0; i < 10; i++) assert.equal((await api(wrong, 'GET', '/api/v2/tailnet/-/devices', undefined, basic)).status, 401);
  const v2 = await api(wrong, 'GET', '/api/v2/tailnet/-/devices', undefined, basic);
  assert.equal(v2.status, 429);
  assert.match(v2.json.message, /too many failed authentications/);
  assert.doesNotMatch(server.log(), /alsonotasecret/);
});
