// `policy check --offline` validates with no server at all: every error as file:line:col: message, exit 1.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli, tempDir } from '../helpers/server.ts';
import { before, failing, posOf } from './fixture.ts';

// Nothing listens on port 9 (discard): any attempt to reach a server would fail loudly.
const nowhere = { url: 'http://127.0.0.1:9', apiKey: 'unused' };
const dir = tempDir();
const write = (name: string, text: string) => {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
};

test('policy check --offline lists every reference error with the real file name and exits 1', () => {
  const text = before.replace('"src": ["bob@"], "dst": ["tag:server:443"]', '"src": ["group:nope"], "dst": ["tag:db:443"]');
  const file = write('bad.hujson', text);
  const r = cli(nowhere, 'policy', 'check', '--offline', '-f', file);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(
    r.stderr,
    `${file}:${posOf(text, '"group:nope"')}: group "group:nope" is not defined in groups\n` +
      `${file}:${posOf(text, '"tag:db:443"')}: tag "tag:db" is not defined in tagOwners\n`,
  );
});

test('policy check --offline reports syntax errors and failing tests (against an empty tailnet)', () => {
  const syntax = write('syntax.hujson', '{\n  "acls": [\n    {"action": "accept" "src": []}]}');
  const r = cli(nowhere, 'policy', 'check', '--offline', '-f', syntax);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^${syntax.replace(/[.]/g, '\\.')}:3:25: `));

  const tests = write('tests.hujson', failing);
  const json = cli(nowhere, 'policy', 'check', '--offline', '-f', tests, '-o', 'json');
  assert.equal(json.status, 1);
  assert.deepEqual(JSON.parse(json.stdout), {
    valid: false,
    errors: [`${tests}:${posOf(failing, '"tag:server:22"')}: test failed: bob@ should accept tag:server:22 but it is denied`],
  });
});

test('policy check --offline accepts a good policy and exits 0', () => {
  const r = cli(nowhere, 'policy', 'check', '--offline', '-f', write('good.hujson', before));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'policy is valid\n');
});
