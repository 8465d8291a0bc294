/** Configuration: embedded defaults, files, env overrides, and clear errors for bad values. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { repoRoot, spawnServer, tempDir } from '../helpers/server.ts';

test('defaults, a YAML file and env overrides combine', () => {
  const dir = tempDir();
  const file = join(dir, 'tailplane.yaml');
  writeFileSync(file, 'server_url: https://ts.example.com\ndns:\n  base_domain: corp.ts.net\nprefixes:\n  allocation: random\n');
  const c = loadConfig({ file, env: { TAILPLANE_DNS_MAGIC_DNS: 'false', TAILPLANE_LISTEN_ADDR: '0.0.0.0:9000' } });
  assert.equal(c.serverUrl, 'https://ts.example.com');
  assert.equal(c.dns.baseDomain, 'corp.ts.net');
  assert.equal(c.dns.magicDns, false);
  assert.equal(c.listenAddr, '0.0.0.0:9000');
  assert.equal(c.prefixes.allocation, 'random');
  assert.equal(c.prefixes.v4, '100.64.0.0/10');
});

test('HuJSON config files with comments work too', () => {
  const file = join(tempDir(), 'tailplane.hujson');
  writeFileSync(file, '{\n  // where clients connect\n  "server_url": "http://10.0.0.1:8080",\n}\n');
  assert.equal(loadConfig({ file, env: {} }).serverUrl, 'http://10.0.0.1:8080');
});

test('bad values name the key and the value', () => {
  const cases: [string, RegExp][] = [
    ['prefixes:\n  v4: 10.0.0.0/8\n', /prefixes\.v4="10\.0\.0\.0\/8".*inside 100\.64\.0\.0\/10/],
    ['listen_addr: nowhere\n', /listen_addr="nowhere"/],
    ['node:\n  expiry_seconds: -5\n', /node\.expiry_seconds=-5/],
    ['dns:\n  nameservers: [banana]\n', /dns\.nameservers/],
    ['colour: blue\n', /unknown config key "colour"/],
    ['metrics:\n  listen_addr: 9090\n', /metrics\.listen_addr=9090.*host:port or "" \(off\)/],
  ];
  for (const [yaml, message] of cases) {
    const file = join(tempDir(), 'bad.yaml');
    writeFileSync(file, yaml);
    assert.throws(() => loadConfig({ file, env: {} }), (err: Error) => err instanceof ConfigError && message.test(err.message));
  }
});

test('serve with an invalid config exits non-zero with the error', () => {
  const file = join(tempDir(), 'bad.yaml');
  writeFileSync(file, 'prefixes:\n  allocation: sideways\n');
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/tailplane.js'), 'serve', '--config', file], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /prefixes\.allocation="sideways"/);
});

test('the server starts with no config file and writes a 0600 bootstrap key', async () => {
  const server = await spawnServer();
  try {
    const { statSync } = await import('node:fs');
    assert.equal(statSync(join(server.dataDir, 'admin-api-key')).mode & 0o777, 0o600);
    assert.match(server.log(), /created the first admin API key in .*admin-api-key/);
    assert.ok(!server.log().includes(server.apiKey), 'the key itself is never logged');
  } finally {
    await server.stop();
  }
});
