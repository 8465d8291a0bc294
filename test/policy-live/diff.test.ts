// The access diff, through the API and `policy diff`: who gains and who loses which access, on a live tailnet.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after as teardown, before as setup, test } from 'node:test';
import { api, cliAsync, inProcessServer } from '../helpers/server.ts';
import { after, before, posOf, seedTailnet } from './fixture.ts';

let server: Awaited<ReturnType<typeof inProcessServer>>;
setup(async () => {
  server = await inProcessServer();
  seedTailnet(server.tailnet);
});
teardown(() => server.close());

const expectedText = [
  '- policy user bob -> tag:server any:443',
  '+ policy user alice -> tag:server any:5432',
  '+ policy user bob -> tag:server any:80',
  '- user bob [bob-laptop] -> web any:443',
  '+ user alice [alice-laptop] -> web any:5432',
  '+ user bob [bob-laptop] -> web any:80',
].join('\n');

test('with no policy set, the diff is against allow-all: everything not granted is a loss', async () => {
  const res = await api(server, 'POST', '/api/v1/policy/diff', { policy: before });
  assert.equal(res.status, 200, res.json.message);
  const changes = res.json.changes as { change: string; src: { identity: string }; dst: string; ports: string }[];
  assert.ok(changes.length > 0 && changes.every((c) => c.change === 'loss'));
  // alice keeps 22 and 443 to web, so she loses only the rest of the port range there.
  assert.ok(changes.some((c) => c.src.identity === 'alice' && c.dst === 'web' && c.ports === '0-21,23-442,444-65535'));
  assert.ok(changes.some((c) => c.src.identity === 'tag:server' && c.dst === 'alice-laptop' && c.ports === '*'));
});

test('policy diff shows the gains and losses between the live policy and a file, as text and JSON', async () => {
  assert.equal((await api(server, 'PUT', '/api/v1/policy', { policy: before })).status, 200);
  const res = await api(server, 'POST', '/api/v1/policy/diff', { policy: after });
  assert.equal(res.status, 200, res.json.message);
  assert.equal(res.json.text, expectedText + '\n');

  const file = join(server.dataDir, 'after.hujson');
  writeFileSync(file, after);
  const text = await cliAsync(server, 'policy', 'diff', '-f', file);
  assert.equal(text.status, 0, text.stderr);
  assert.equal(text.stdout, expectedText + '\n');

  const json = await cliAsync(server, 'policy', 'diff', '-f', file, '-o', 'json');
  assert.equal(json.status, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), [
    { change: 'loss', src: { kind: 'policy', identity: 'user bob', nodes: [] }, dst: 'tag:server', ports: '443', proto: 'any' },
    { change: 'gain', src: { kind: 'policy', identity: 'user alice', nodes: [] }, dst: 'tag:server', ports: '5432', proto: 'any' },
    { change: 'gain', src: { kind: 'policy', identity: 'user bob', nodes: [] }, dst: 'tag:server', ports: '80', proto: 'any' },
    { change: 'loss', src: { kind: 'user', identity: 'bob', nodes: ['bob-laptop'] }, dst: 'web', ports: '443', proto: 'any' },
    { change: 'gain', src: { kind: 'user', identity: 'alice', nodes: ['alice-laptop'] }, dst: 'web', ports: '5432', proto: 'any' },
    { change: 'gain', src: { kind: 'user', identity: 'bob', nodes: ['bob-laptop'] }, dst: 'web', ports: '80', proto: 'any' },
  ]);

  writeFileSync(file, before);
  assert.equal((await cliAsync(server, 'policy', 'diff', '-f', file)).stdout, 'no access changes\n');
});

test('diffing an invalid policy is refused with line:col and the user\'s file name', async () => {
  const bad = after.replace('"bob@"', '"group:nope"');
  const res = await api(server, 'POST', '/api/v1/policy/diff', { policy: bad });
  assert.equal(res.status, 400);
  const error = `${posOf(bad, '"group:nope"')}: group "group:nope" is not defined in groups`;
  assert.equal(res.json.message, `invalid policy:\npolicy.hujson:${error}`);
  const file = join(server.dataDir, 'bad.hujson');
  writeFileSync(file, bad);
  const r = await cliAsync(server, 'policy', 'diff', '-f', file);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `${file}:${error}\n`);
});
