/**
 * Ephemeral clean-up against a real SQLite file: a deletion the store refuses (another process holds the
 * database's write lock) is tried again once the lock is gone, instead of leaving the node until a restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { createEphemeralReaper } from '../../src/state/ephemeral.ts';
import { createTailnet } from '../../src/state/tailnet.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('an ephemeral node whose deletion failed is deleted on a later try', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'tp-reaper-')), 'tailplane.sqlite');
  const store = openSqliteStore(file);
  const dns = { magicDns: true, baseDomain: 'ts.test', nameservers: [], overrideLocalDns: true, splitDns: {}, searchDomains: [], extraRecords: [] };
  const prefixes = { v4: '100.64.0.0/10', v6: 'fd7a:115c:a1e0::/48', allocation: 'sequential' as const };
  const t = createTailnet(store, { prefixes, defaultDns: dns, expirySeconds: 0 });
  const user = t.users.create({ name: 'eve' });
  const node = t.nodes.register({
    machineKey: `mkey:${'1'.repeat(64)}`, nodeKey: `nodekey:${'2'.repeat(64)}`, hostname: 'ci-runner', hostinfo: {},
    userId: user.id, tags: [], ephemeral: true, method: 'authkey',
  });

  // Another process takes the write lock: the store's deletion waits out its busy timeout, then fails.
  const other = new Database(file);
  other.exec('BEGIN EXCLUSIVE');
  const errors: string[] = [];
  const reaper = createEphemeralReaper(t, { inactivityMs: 200, onError: (err) => errors.push((err as Error).message) });
  try {
    const deadline = Date.now() + 15_000;
    while (errors.length === 0 && Date.now() < deadline) await sleep(50);
    assert.match(errors[0] ?? '', /locked|busy/i, 'the first deletion failed on the lock');
    assert.ok(t.nodes.find(node.id), 'the node is still there');
    other.exec('COMMIT');
    while (t.nodes.find(node.id) && Date.now() < deadline + 5000) await sleep(50);
    assert.equal(t.nodes.find(node.id), undefined, 'deleted once the lock was released');
    assert.deepEqual(new Database(file, { readonly: true }).prepare('SELECT count(*) AS n FROM nodes').get(), { n: 0 }, 'and in the file');
  } finally {
    reaper.stop();
    if (other.inTransaction) other.exec('ROLLBACK');
    other.close();
    store.close();
  }
});
