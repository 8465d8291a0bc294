/** `npm start`, as the README runs it: the server comes up, and a SIGTERM to npm (a service manager's stop) stops it. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { repoRoot, tempDir } from '../helpers/server.ts';

test('SIGTERM to `npm start` stops the server it started, leaving no server behind', async () => {
  const npm = spawn('npm', ['start', '--', '--listen', '127.0.0.1:0', '--data-dir', tempDir()], {
    cwd: repoRoot,
    env: { ...process.env, TAILPLANE_DERP_STUN_LISTEN_ADDR: '127.0.0.1:0', TAILPLANE_METRICS_LISTEN_ADDR: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  npm.stdout.on('data', (d) => (log += d));
  npm.stderr.on('data', (d) => (log += d));
  const listening = await new Promise<{ url: string; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start did not come up in 30 s:\n${log}`)), 30_000);
    npm.stderr.on('data', () => {
      const line = /.*tailplane listening on (http:\/\/[^\s"]+).*/.exec(log)?.[0];
      if (!line) return;
      clearTimeout(timer);
      const { pid } = JSON.parse(line) as { pid: number };
      resolve({ url: /listening on (http:\/\/[^\s"]+)/.exec(line)![1]!, pid });
    });
  });
  const alive = () => {
    try {
      process.kill(listening.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    assert.equal(listening.pid === npm.pid, false, 'npm runs the server as a child');
    assert.deepEqual(await (await fetch(`${listening.url}/health`)).json(), { status: 'ok', store: 'ok' });
    const exited = new Promise<number | null>((resolve) => npm.once('exit', resolve));
    npm.kill('SIGTERM');
    assert.equal(await exited, 0, `npm exits as the server does, cleanly:\n${log}`);
    assert.equal(alive(), false, 'the server is gone once npm has exited');
  } finally {
    if (alive()) process.kill(listening.pid, 'SIGKILL');
  }
});
