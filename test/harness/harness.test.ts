/** Checks the tailscaled harness itself: start against an unreachable login server, read status, stop and clean up. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { createHarness, freePort, type Harness } from './tailscaled.ts';

let harness: Harness;
before(() => {
  harness = createHarness();
});
after(async () => {
  await harness?.cleanup();
});

test('tailscaled starts, reports NeedsLogin/NoState, and stops cleanly', { timeout: 120_000 }, async () => {
  const d = await harness.start({ name: 'h1' });
  try {
    const st = await d.status();
    assert.ok(['NoState', 'NeedsLogin', 'Stopped'].includes(st.BackendState), `unexpected BackendState ${st.BackendState}`);

    // A login server that refuses connections: `up` keeps retrying, and the node stays logged out.
    const deadPort = await freePort();
    const up = d.startUp({ loginServer: `http://127.0.0.1:${deadPort}`, hostname: 'h1', timeoutMs: 20_000 });
    const st2 = await d.waitFor(
      async () => {
        const s = await d.status();
        return ['NeedsLogin', 'NoState'].includes(s.BackendState) && s;
      },
      15_000,
      'BackendState NeedsLogin/NoState while the login server is unreachable',
    );
    assert.ok(st2.BackendState === 'NeedsLogin' || st2.BackendState === 'NoState');
    up.cancel();
    const r = await up.done;
    assert.notEqual(r.code, 0, 'up against an unreachable server must not succeed');

    await assert.rejects(
      d.waitFor(() => false, 600, 'something that never happens'),
      /h1: timed out after 600 ms waiting for something that never happens/,
    );

    const pid = d.pid()!;
    await d.restart();
    assert.notEqual(d.pid(), pid, 'restart starts a new process');
    assert.ok((await d.status()).BackendState);

    const pid2 = d.pid()!;
    await d.stop();
    assert.throws(() => process.kill(pid2, 0), /ESRCH/, 'daemon process is gone after stop');
  } catch (err) {
    d.dumpLogs();
    throw err;
  }
});

test('cleanup kills every daemon and removes their dirs', { timeout: 120_000 }, async () => {
  const h = createHarness();
  const [a, b] = await h.startMany(2, { prefix: 'c' });
  const pids = [a!.pid()!, b!.pid()!];
  pids.forEach((pid) => process.kill(pid, 0));
  await h.cleanup();
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/);
  assert.equal(existsSync(a!.dir), false);
});
