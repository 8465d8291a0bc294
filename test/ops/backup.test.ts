/**
 * Online backup and restore with the real CLI against a real server: a backup taken while a loop keeps creating
 * users holds every user acknowledged before it began; restore checks the file, refuses a running server's data
 * dir and an existing database (unless --force), and the restored server starts with the users.
 */
import assert from 'node:assert/strict';
import { existsSync, copyFileSync, openSync, statSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { api, cliAsync, spawnServer, tempDir, type ChildServer } from '../helpers/server.ts';

let server: ChildServer;
let restored: ChildServer | undefined;
const dir = tempDir('tailplane-backup-');
const backupFile = join(dir, 'tailplane-backup.sqlite');
/** Names whose creation the API acknowledged before the backup command started. */
let ackedBefore: string[] = [];

before(async () => {
  server = await spawnServer();
});

after(async () => {
  await restored?.stop();
  await server?.stop();
});

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

test('a backup under a write load holds every user acknowledged before it began', async () => {
  const acked: string[] = [];
  let stop = false;
  // Four writers, each creating users one after another as fast as the server acknowledges them.
  const writer = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const name = `load-${w}-${i}`;
      const r = await api(server, 'POST', '/api/v1/user', { name });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      acked.push(name);
    }
  };
  const writers = [0, 1, 2, 3].map(writer);
  // A writer that fails stops adding acks: wait with a deadline, then let Promise.all say why.
  const deadline = Date.now() + 60_000;
  while (acked.length < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  if (acked.length < 200) {
    stop = true;
    await Promise.all(writers);
    assert.fail(`only ${acked.length} writes acknowledged in 60 s`);
  }
  ackedBefore = [...acked];
  const backup = await cliAsync(server, 'backup', '--to', backupFile);
  const ackedDuring = acked.length - ackedBefore.length;
  stop = true;
  await Promise.all(writers);
  assert.equal(backup.status, 0, backup.stderr);
  assert.match(backup.stdout, /backup written to .*tailplane-backup\.sqlite \(\d+ bytes, schema \d+, \d+ users, 0 nodes, integrity ok\)/);
  assert.ok(ackedDuring > 0, 'the writers kept writing while the backup ran');
  console.log(`# ${ackedBefore.length} users acknowledged before the backup, ${ackedDuring} while it ran`);
  assert.equal(mode(backupFile), '600');
  assert.ok(!existsSync(`${backupFile}.partial`));
  const leftovers = (await import('node:fs')).readdirSync(server.dataDir).filter((f) => f.startsWith('backup-'));
  assert.deepEqual(leftovers, [], 'the server removed its temporary copy');

  const again = await cliAsync(server, 'backup', '--to', backupFile);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /exists; pass --force to replace it/);
  // The copy holds every secret hash: only the admin role may take one.
  const auditorKey = (await api(server, 'POST', '/api/v1/apikey', { role: 'auditor' })).json.apiKey as string;
  const other = join(dir, 'auditor.sqlite');
  const refused = await cliAsync({ url: server.url, apiKey: auditorKey }, 'backup', '--to', other);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /forbidden: only the admin role may call POST \/api\/v1\/backup/);
  assert.ok(!existsSync(other) && !existsSync(`${other}.partial`), 'nothing written for a refused backup');
});

test('restore refuses a running server\'s data dir and a damaged file, even with --force', async () => {
  const running = await cliAsync(server, 'restore', '--from', backupFile, '--data-dir', server.dataDir, '--force');
  assert.equal(running.status, 1);
  assert.match(running.stderr, /is in use by a running tailplane server.*stop it first/);
  assert.doesNotMatch(running.stderr, /\n\s+at /, 'no stack trace');

  const damaged = join(dir, 'damaged.sqlite');
  copyFileSync(backupFile, damaged);
  const fd = openSync(damaged, 'r+');
  writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, 4096 * 2);
  closeSync(fd);
  const target = join(dir, 'from-damaged');
  const bad = await cliAsync(server, 'restore', '--from', damaged, '--data-dir', target);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /damaged\.sqlite (fails PRAGMA integrity_check|is not a readable tailplane backup)/);
  assert.ok(!existsSync(join(target, 'tailplane.sqlite')), 'nothing restored from a damaged file');

  const notDb = join(dir, 'notes.txt');
  writeFileSync(notDb, 'not a database\n');
  const wrong = await cliAsync(server, 'restore', '--from', notDb, '--data-dir', target);
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /notes\.txt is not a readable tailplane backup: file is not a database/);
});

test('the restored server starts with every acknowledged user; an existing database needs --force', async () => {
  const target = join(dir, 'restored');
  const r = await cliAsync(server, 'restore', '--from', backupFile, '--data-dir', target);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /restored .* into .*restored\/tailplane\.sqlite \(schema \d+, \d+ users, 0 nodes\)/);
  assert.equal(mode(target), '700');
  assert.equal(mode(join(target, 'tailplane.sqlite')), '600');

  const twice = await cliAsync(server, 'restore', '--from', backupFile, '--data-dir', target);
  assert.equal(twice.status, 1);
  assert.match(twice.stderr, /already has a database .*; pass --force to replace it/);
  const forced = await cliAsync(server, 'restore', '--from', backupFile, '--data-dir', target, '--force');
  assert.equal(forced.status, 0, forced.stderr);

  // The API keys are in the database; the operator brings the key file along (it is not part of the backup).
  writeFileSync(join(target, 'admin-api-key'), server.apiKey + '\n', { mode: 0o600 });
  restored = await spawnServer({ dataDir: target });
  const users = await api(restored, 'GET', '/api/v1/user');
  assert.equal(users.status, 200);
  const names = new Set((users.json.users as { name: string }[]).map((u) => u.name));
  const missing = ackedBefore.filter((n) => !names.has(n));
  assert.deepEqual(missing, [], 'every user acknowledged before the backup began is restored');
  assert.equal((await api(restored, 'GET', '/api/v1/health')).json.databaseConnectivity, true);
  // The restored server takes writes of its own, and its audit chain (backed up with the rest) still verifies.
  assert.equal((await api(restored, 'POST', '/api/v1/user', { name: 'after-restore' })).status, 200);
  const verify = await cliAsync(restored, 'audit', 'verify');
  assert.equal(verify.status, 0, verify.stderr);
  assert.match(verify.stdout, /audit log intact: \d+ entries/);
  const audited = await api(restored, 'GET', `/api/v1/audit?object=${encodeURIComponent('user:' + users.json.users[0].id)}`);
  assert.equal(audited.json.entries.length, 1, 'the restored log has the entries of the restored users');
});
