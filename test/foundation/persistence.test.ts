/** Durability: state survives a restart, and kill -9 during a write burst loses no acknowledged write. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { createTailnet } from '../../src/state/tailnet.ts';
import { topologyOf } from '../../src/state/policy-view.ts';
import { api, spawnServer } from '../helpers/server.ts';

test('all state survives a restart', async () => {
  const first = await spawnServer();
  await api(first, 'POST', '/api/v1/user', { name: 'carol', email: 'carol@example.com' });
  const key = (await api(first, 'POST', '/api/v1/preauthkey', { user: '1', reusable: true })).json.preAuthKey;
  await api(first, 'PUT', '/api/v1/policy', { policy: '{"acls": []}' });
  const dns = (await api(first, 'GET', '/api/v1/dns')).json.dns;
  await api(first, 'PUT', '/api/v1/dns', { ...dns, searchDomains: ['corp.example'] });
  await first.stop();

  const second = await spawnServer({ dataDir: first.dataDir });
  try {
    assert.equal(second.apiKey, first.apiKey, 'the bootstrap key is not replaced');
    const users = (await api(second, 'GET', '/api/v1/user')).json.users;
    assert.deepEqual(users.map((u: { name: string }) => u.name), ['carol']);
    const keys = (await api(second, 'GET', '/api/v1/preauthkey')).json.preAuthKeys;
    assert.equal(keys[0].id, key.id);
    assert.equal((await api(second, 'GET', '/api/v1/policy')).json.policy, '{"acls": []}');
    assert.deepEqual((await api(second, 'GET', '/api/v1/dns')).json.dns.searchDomains, ['corp.example']);
  } finally {
    await second.stop();
  }
});

test('IdP groups stored with a user survive a reopen of the database, and a login that drops one clears it', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'tp-idp-')), 'tailplane.db');
  const open = () => {
    const store = openSqliteStore(file);
    const dns = { magicDns: true, baseDomain: 'ts.test', nameservers: [], overrideLocalDns: true, splitDns: {}, searchDomains: [], extraRecords: [] };
    const prefixes = { v4: '100.64.0.0/10', v6: 'fd7a:115c:a1e0::/48', allocation: 'sequential' as const };
    return { store, t: createTailnet(store, { prefixes, defaultDns: dns, expirySeconds: 0, idpGroupsInPolicy: true }) };
  };
  const first = open();
  const id = first.t.users.create({ name: 'ngozi', providerId: 'https://idp#ngozi', idpGroups: ['eng', 'ward-3', 'eng'] }).id;
  first.store.close();
  const second = open();
  assert.deepEqual(second.t.users.get(id).idpGroups, ['eng', 'ward-3']);
  assert.deepEqual(topologyOf(second.t).users.find((u) => u.id === id)?.idpGroups, ['eng', 'ward-3']);
  second.t.users.update(id, { idpGroups: ['ward-3'] });
  second.store.close();
  const third = open();
  assert.deepEqual(third.t.users.get(id).idpGroups, ['ward-3']);
  third.store.close();
});

test('kill -9 during concurrent writes loses no acknowledged write and leaves no half-written object', async () => {
  const server = await spawnServer();
  const acknowledged: string[] = [];
  let sent = 0;
  // 8 concurrent writers, each creating a user and a pre-auth key for it, until the server is killed.
  const writer = async (w: number) => {
    for (let i = 0; ; i++) {
      const name = `u${w}-${i}`;
      sent++;
      try {
        const u = await api(server, 'POST', '/api/v1/user', { name, email: `${name}@example.com` });
        if (u.status !== 200) throw new Error(`status ${u.status}`);
        acknowledged.push(name);
      } catch {
        return;
      }
    }
  };
  const writers = Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
  await new Promise((r) => setTimeout(r, 1500));
  server.process.kill('SIGKILL');
  await writers;
  await server.stop();
  assert.ok(acknowledged.length > 20, `only ${acknowledged.length} writes were acknowledged before the kill`);

  const db = new Database(join(server.dataDir, 'tailplane.sqlite'));
  assert.equal((db.pragma('integrity_check') as { integrity_check: string }[])[0]!.integrity_check, 'ok');
  db.close();
  const restarted = await spawnServer({ dataDir: server.dataDir });
  try {
    const users: { name: string; email: string }[] = (await api(restarted, 'GET', '/api/v1/user')).json.users;
    const stored = new Set(users.map((u) => u.name));
    const lost = acknowledged.filter((n) => !stored.has(n));
    assert.deepEqual(lost, [], 'acknowledged writes lost');
    for (const u of users) assert.equal(u.email, `${u.name}@example.com`, 'a user row is complete');
    console.log(`# ${acknowledged.length} acknowledged of ${sent} sent; ${users.length} stored after kill -9`);
  } finally {
    await restarted.stop();
  }
});

test('soft writes (what clients report) also survive kill -9, interleaved with durable ones', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'tailplane-soft-')), 'db.sqlite');
  openSqliteStore(path).close();
  // A child writes users, alternating soft and durable commits, and prints each acknowledged id.
  const script = `
    import { openSqliteStore } from ${JSON.stringify(new URL('../../src/store/sqlite.ts', import.meta.url).href)};
    const store = openSqliteStore(${JSON.stringify(path)});
    for (let i = 0; ; i++) {
      const u = { name: 'u' + i, displayName: '', email: '', createdAt: new Date().toISOString() };
      const id = store.write((tx) => tx.insertUser(u), { soft: i % 2 === 0 });
      process.stdout.write(id + '\\n');
    }`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  while (out.split('\n').length < 2000) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const acknowledged = out.split('\n').filter(Boolean).map(Number);
  const db = new Database(path);
  try {
    assert.equal((db.pragma('integrity_check', { simple: true }) as string), 'ok');
    const stored = new Set((db.prepare('SELECT id FROM users').all() as { id: number }[]).map((r) => r.id));
    assert.deepEqual(acknowledged.filter((id) => !stored.has(id)), []);
  } finally {
    db.close();
  }
});
