// A policy that fails validation or its own tests is refused through the API and the CLI, quoting line:col, and changes nothing.
// Needs src/server.ts to pass createPolicyChecker(tailnet) to the admin app (not the HuJSON-only stub).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before as setup, test } from 'node:test';
import { api, cliAsync, inProcessServer } from '../helpers/server.ts';
import { before, failing, posOf, seedTailnet } from './fixture.ts';

let server: Awaited<ReturnType<typeof inProcessServer>>;
setup(async () => {
  server = await inProcessServer();
  seedTailnet(server.tailnet);
  assert.equal((await api(server, 'PUT', '/api/v1/policy', { policy: before })).status, 200);
});
after(() => server.close());

const livePolicy = async () => (await api(server, 'GET', '/api/v1/policy')).json.policy;
const testFailure = `${posOf(failing, '"tag:server:22"')}: test failed: bob@ should accept tag:server:22 but it is denied`;

test('a policy whose tests fail is refused with the failing test quoted, and the live policy stays', async () => {
  for (const [method, path] of [['PUT', '/api/v1/policy'], ['POST', '/api/v1/policy/check']]) {
    const res = await api(server, method!, path!, { policy: failing });
    assert.equal(res.status, 400, `${method} ${path}`);
    assert.equal(res.json.message, `policy refused:\npolicy.hujson:${testFailure}`);
  }
  assert.equal(await livePolicy(), before);
});

test('a syntax error is refused with its line:col', async () => {
  const res = await api(server, 'PUT', '/api/v1/policy', { policy: '{"acls": [\n  {"action": "accept",, }]}' });
  assert.equal(res.status, 400);
  assert.match(res.json.message, /^policy refused:\npolicy\.hujson:2:23: expected a quoted key/);
  assert.equal(await livePolicy(), before);
});

test('an unknown group is refused by /policy/check', async () => {
  const res = await api(server, 'POST', '/api/v1/policy/check', { policy: before.replace('"src": ["bob@"]', '"src": ["group:nope"]') });
  assert.equal(res.status, 400);
  assert.match(res.json.message, /policy\.hujson:6:\d+: group "group:nope" is not defined in groups/);
});

test('policy set and check on the CLI print the refusal as the user\'s file:line:col and exit 1', async () => {
  const file = join(server.dataDir, 'failing.hujson');
  writeFileSync(file, failing);
  for (const verb of ['set', 'check']) {
    const r = await cliAsync(server, 'policy', verb, '-f', file);
    assert.equal(r.status, 1, `policy ${verb}: ${r.stderr}`);
    assert.equal(r.stderr, `${file}:${testFailure}\n`);
  }
  const json = await cliAsync(server, 'policy', 'check', '-f', file, '-o', 'json');
  assert.equal(json.status, 1);
  assert.deepEqual(JSON.parse(json.stdout), { valid: false, errors: [`${file}:${testFailure}`] });
  assert.equal(await livePolicy(), before);
  writeFileSync(file, before);
  assert.equal((await cliAsync(server, 'policy', 'check', '-f', file)).stdout, 'policy is valid\n');
});

test('tests run against the live nodes: an address test passes live although it would fail on an empty tailnet', async () => {
  const laptop = server.tailnet.nodes.list().find((n) => n.givenName === 'alice-laptop')!;
  const text = before.replace('"tests": [', `"tests": [{"src": "${laptop.ipv4}", "accept": ["tag:server:22"]}, `);
  const res = await api(server, 'PUT', '/api/v1/policy', { policy: text });
  assert.equal(res.status, 200, res.json.message);
  const file = join(server.dataDir, 'address-test.hujson');
  writeFileSync(file, text);
  const offline = await cliAsync(server, 'policy', 'check', '--offline', '-f', file);
  assert.equal(offline.status, 1);
  assert.match(offline.stderr, /test failed: 100\.64\.0\.\d+ should accept tag:server:22 but it is denied/);
});
