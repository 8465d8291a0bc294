/** The group commit's WAL fsync off the event loop (src/store/wal-sync.ts), on real files. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openGroup } from '../../src/store/group.ts';
import { walSync } from '../../src/store/wal-sync.ts';

const walFile = () => {
  const path = join(mkdtempSync(join(tmpdir(), 'tailplane-wal-')), 'db.sqlite-wal');
  writeFileSync(path, 'frames');
  return path;
};

/** 'pending' while the promise has not settled by the end of this turn. */
const state = (p: Promise<void>) => Promise.race<string>([p.then(() => 'resolved', (e: Error) => `rejected: ${e.message}`), new Promise((r) => setImmediate(() => r('pending')))]);

test('groups settle only after an fsync that started after their commit; those waiting share the next one', async () => {
  const wal = walSync(walFile());
  const first = openGroup();
  wal.sync(first);
  const [second, third] = [openGroup(), openGroup()];
  wal.sync(second);
  wal.sync(third);
  assert.equal(await state(first.durable), 'pending', 'not before the fsync has run on the thread pool');
  await Promise.all([first.durable, second.durable, third.durable]);
  wal.close();
});

test('an fsync that cannot run rejects the group: its writers are not told their write is durable', async () => {
  const wal = walSync(join(tmpdir(), 'tailplane-no-such-dir', 'db.sqlite-wal'));
  const g = openGroup();
  wal.sync(g);
  assert.match(await state(g.durable), /rejected: ENOENT/);
  wal.close();
});

test('close makes what is waiting durable at once; an in-memory database has nothing to sync', async () => {
  const wal = walSync(walFile());
  const running = openGroup();
  const waiting = openGroup();
  wal.sync(running);
  wal.sync(waiting);
  wal.close();
  assert.equal(await state(waiting.durable), 'resolved');
  await running.durable;
  const memory = walSync(undefined);
  const g = openGroup();
  memory.sync(g);
  assert.equal(await state(g.durable), 'resolved');
});
