/**
 * The data dir is private and has one server: 0700 and every file 0600 whatever existed before (with a
 * warning when the dir was open to others), and a second server on the same dir is refused while the first
 * runs, also after the first was killed with SIGKILL it is free again.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort } from '../harness/tailscaled.ts';
import { spawnServer, tempDir } from '../helpers/server.ts';
import { serveToEnd } from './serve.ts';

const modeOf = (path: string) => statSync(path).mode & 0o777;

test('an existing 0755 data dir becomes 0700 with every file 0600, and the server says so', async () => {
  const dataDir = join(tempDir(), 'data');
  mkdirSync(dataDir, { mode: 0o755 });
  chmodSync(dataDir, 0o755);
  writeFileSync(join(dataDir, 'leftover.txt'), 'old\n', { mode: 0o644 });
  chmodSync(join(dataDir, 'leftover.txt'), 0o644);
  const server = await spawnServer({ dataDir });
  try {
    await fetch(`${server.url}/health`);
    assert.equal(modeOf(dataDir), 0o700);
    const files = readdirSync(dataDir);
    for (const name of ['tailplane.sqlite', 'tailplane.sqlite-wal', 'tailplane.sqlite-shm', 'noise.key', 'admin-api-key', 'leftover.txt']) {
      assert.ok(files.includes(name), `${name} exists`);
    }
    for (const name of files) assert.equal(modeOf(join(dataDir, name)).toString(8), '600', name);
    assert.match(server.log(), /data dir .* was mode 0755, readable by other users: set it to 0700/);
  } finally {
    await server.stop();
  }
});

test('a second server on the same data dir is refused; the lock goes with the first, even on SIGKILL', async () => {
  const dataDir = tempDir();
  const first = await spawnServer({ dataDir });
  const env = { TAILPLANE_DERP_STUN_LISTEN_ADDR: '127.0.0.1:0' };
  try {
    const second = serveToEnd(['--listen', `127.0.0.1:${await freePort()}`], env, dataDir);
    assert.equal(second.signal, null, `a second server kept running on the same data dir:\n${second.stderr}`);
    assert.equal(second.status, 1);
    assert.match(second.stderr, new RegExp(`tailplane: data dir .* is in use by another tailplane server \\(pid ${first.process.pid}\\): stop it, or give this one its own data_dir`));
    assert.doesNotMatch(second.stderr, /\n\s+at /, 'no stack trace');
    assert.equal((await fetch(`${first.url}/health`)).status, 200, 'the first one is untouched');
  } finally {
    await first.stop('SIGKILL');
  }
  const after = await spawnServer({ dataDir });
  assert.equal((await fetch(`${after.url}/health`)).status, 200);
  await after.stop();
});
