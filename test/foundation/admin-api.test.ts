/** The admin API's boundary: authentication, validation and error statuses, against a real server process. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, spawnServer, type ChildServer } from '../helpers/server.ts';

let server: ChildServer;
before(async () => {
  server = await spawnServer();
});
after(async () => {
  await server.stop();
});

const userCount = async () => (await api(server, 'GET', '/api/v1/user')).json.users.length;

test('requests without a valid API key get 401 and change nothing', async () => {
  const before = await userCount();
  const expired = (await api(server, 'POST', '/api/v1/apikey', {})).json.apiKey as string;
  const revoked = (await api(server, 'POST', '/api/v1/apikey', {})).json.apiKey as string;
  const prefixOf = (k: string) => k.split('-')[2];
  assert.equal((await api(server, 'POST', '/api/v1/apikey/expire', { prefix: prefixOf(expired) })).status, 200);
  assert.equal((await api(server, 'DELETE', `/api/v1/apikey/${prefixOf(revoked)}`)).status, 200);
  const attempts: Record<string, Record<string, string>> = {
    missing: { authorization: '' },
    malformed: { authorization: 'Token abc' },
    unknown: { authorization: 'Bearer tpkey-api-aaaaaaaaaaaa-nope' },
    expired: { authorization: `Bearer ${expired}` },
    revoked: { authorization: `Bearer ${revoked}` },
  };
  for (const [what, headers] of Object.entries(attempts)) {
    const res = await api(server, 'POST', '/api/v1/user', { name: `eve-${what}` }, headers);
    assert.equal(res.status, 401, `${what} key`);
    assert.match(res.json.message, /API key/);
  }
  assert.equal(await userCount(), before);
});

test('malformed JSON, unknown fields and wrong types get 400 with a readable message', async () => {
  const cases: [string, unknown][] = [
    ['malformed JSON', '{"name":'],
    ['unknown field', { name: 'bob', admin: true }],
    ['wrong type', { name: 42 }],
    ['missing field', {}],
  ];
  for (const [what, body] of cases) {
    const res = await api(server, 'POST', '/api/v1/user', body);
    assert.equal(res.status, 400, what);
    assert.ok(res.json.message.length > 0, what);
  }
  const badRoute = await api(server, 'POST', '/api/v1/node/1/approve_routes', { routes: ['not-a-cidr'] });
  assert.equal(badRoute.status, 404); // no node 1 yet: not found wins
  const badTag = await api(server, 'POST', '/api/v1/preauthkey', { aclTags: ['server'] });
  assert.equal(badTag.status, 400);
  assert.match(badTag.json.message, /tag:name/);
});

test('an oversized body gets 413', async () => {
  const res = await api(server, 'PUT', '/api/v1/policy', { policy: 'x'.repeat(2 * 1024 * 1024) });
  assert.equal(res.status, 413);
});

test('a duplicate user gets 409; unknown ids get 404', async () => {
  assert.equal((await api(server, 'POST', '/api/v1/user', { name: 'dup' })).status, 200);
  const dup = await api(server, 'POST', '/api/v1/user', { name: 'dup' });
  assert.equal(dup.status, 409);
  assert.match(dup.json.message, /already exists/);
  assert.equal((await api(server, 'DELETE', '/api/v1/user/9999')).status, 404);
  assert.equal((await api(server, 'GET', '/api/v1/node/9999')).status, 404);
});

test('the server kept serving and publishes its OpenAPI document', async () => {
  const health = await api(server, 'GET', '/api/v1/health');
  // Headscale's field, then the details /health keeps to itself (on PostgreSQL, the replica's too).
  const { databaseConnectivity, status, store } = health.json;
  assert.deepEqual({ databaseConnectivity, status, store }, { databaseConnectivity: true, status: 'ok', store: 'ok' });
  const doc = await api(server, 'GET', '/api/v1/openapi.json', undefined, { authorization: '' });
  assert.equal(doc.status, 200);
  assert.equal(doc.json.openapi, '3.0.3');
  assert.ok(doc.json.paths['/api/v1/node/{id}/approve_routes'].post.requestBody);
  assert.ok(doc.json.paths['/api/v1/user'].get);
});
