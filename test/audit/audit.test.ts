/**
 * The audit log against a real `tailplane serve`: one entry per change with the right actor, door and object
 * for API v1, the CLI, API v2 (OAuth client), engine apply, the console, a real tailscaled's registration and an
 * SSH check; entries survive kill -9 right after an acknowledged write;
 * `audit verify` names the first broken entry after a row is edited or deleted in the SQLite file; pruning
 * keeps the chain verifiable.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { generateKeyPair, type KeyPair } from '../../src/control/noise/primitives.ts';
import { createHarness } from '../harness/tailscaled.ts';
import { noiseRequest } from '../control/noise-client.ts';
import { launchBrowser, seriousA11yViolations } from '../helpers/browser.ts';
import { api, cliAsync, repoRoot, spawnServer, type ChildServer } from '../helpers/server.ts';

let server: ChildServer;
const harness = createHarness();
before(async () => (server = await spawnServer()));
after(async () => {
  await harness.cleanup();
  await server.stop();
});

const noise = (machine: KeyPair, path: string, method = 'GET', body = '') => noiseRequest(server.url, machine, path, method, body);

type Entry = { id: number; actor: string; door: string; source: string; action: string; object: string; summary: string };

/** Entries written after `afterId`, read through the API. */
async function entriesAfter(afterId: number): Promise<Entry[]> {
  const r = await api(server, 'GET', `/api/v1/audit?cursor=${afterId}`);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json.entries;
}

async function lastId(): Promise<number> {
  const all: Entry[] = (await api(server, 'GET', '/api/v1/audit')).json.entries;
  return all.at(-1)?.id ?? 0;
}

test('API v1, the CLI, API v2 (OAuth client) and engine apply each write exactly one entry with actor, door and object', async () => {
  let mark = await lastId();
  const made = await api(server, 'POST', '/api/v1/user', { name: 'alice' });
  assert.equal(made.status, 200, JSON.stringify(made.json));
  let got = await entriesAfter(mark);
  assert.equal(got.length, 1, JSON.stringify(got));
  assert.equal(got[0]!.door, 'api-v1');
  assert.equal(got[0]!.action, 'user.create');
  assert.equal(got[0]!.object, `user:${made.json.user.id}`);
  assert.match(got[0]!.actor, /^apikey:\w+$/);
  assert.ok(server.apiKey.includes(got[0]!.actor.slice('apikey:'.length)), 'the key\'s public prefix');
  assert.ok(!got[0]!.actor.includes(server.apiKey), 'never the secret');
  assert.equal(got[0]!.source, '127.0.0.1');

  mark = got[0]!.id;
  const r = await cliAsync(server, 'users', 'create', 'bob');
  assert.equal(r.status, 0, r.stderr);
  got = await entriesAfter(mark);
  assert.equal(got.length, 1, JSON.stringify(got));
  assert.deepEqual([got[0]!.door, got[0]!.action], ['cli', 'user.create']);

  // The policy entry holds the access diff, not the text.
  mark = got[0]!.id;
  const policy = '{"acls": [{"action": "accept", "src": ["alice@"], "dst": ["bob@:22"]}]}';
  assert.equal((await api(server, 'PUT', '/api/v1/policy', { policy })).status, 200);
  got = await entriesAfter(mark);
  assert.equal(got.length, 1, JSON.stringify(got));
  assert.deepEqual([got[0]!.action, got[0]!.object], ['policy.set', 'policy']);
  assert.ok(!got[0]!.summary.includes('"acls"'), got[0]!.summary);
  // The access diff in the policy's own terms (no nodes yet): allow-all gives way to one narrower rule.
  assert.equal(got[0]!.summary, '- policy * -> * any:*');

  const created = await cliAsync(server, 'oauth-clients', 'create', '--scopes', 'dns', '-o', 'json');
  assert.equal(created.status, 0, created.stderr);
  const { id: clientRecordId, clientId, clientSecret } = JSON.parse(created.stdout);
  const tokenRes = await fetch(`${server.url}/api/v2/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }),
  });
  const { access_token: token } = await tokenRes.json();
  mark = await lastId();
  const v2 = await api(server, 'POST', '/api/v2/tailnet/-/dns/nameservers', { dns: ['9.9.9.9'] }, { authorization: `Bearer ${token}` });
  assert.equal(v2.status, 200, JSON.stringify(v2.json));
  got = await entriesAfter(mark);
  assert.equal(got.length, 1, JSON.stringify(got));
  assert.deepEqual([got[0]!.door, got[0]!.action, got[0]!.object], ['api-v2', 'dns.set', 'dns']);
  assert.equal(got[0]!.summary, 'nameservers: ["1.1.1.1"] → ["9.9.9.9"]');
  assert.match(got[0]!.actor, /^oauth-client:\w+$/, `client ${clientRecordId}`);
  assert.ok(clientId.includes(got[0]!.actor.slice('oauth-client:'.length)) && !got[0]!.actor.includes(clientSecret));

  // `tailplane apply` (the engine) marks its changes as its own: one entry per change it makes.
  mark = await lastId();
  const applied = await cliAsync(server, 'apply', '-f', join(repoRoot, 'examples/desired/healthcare.hujson'), '--auto-approve');
  assert.equal(applied.status, 0, applied.stderr);
  const byEngine = await entriesAfter(mark);
  assert.deepEqual([...new Set(byEngine.map((e) => e.door))], ['engine']);
  assert.deepEqual(byEngine.filter((e) => e.action === 'user.create').map((e) => e.summary).sort(), ['emeka', 'ngozi', 'uzo']);
  assert.equal(byEngine.filter((e) => e.action === 'policy.set').length, 1);

  // Filters: by object and actor, as the CLI's table and JSON.
  const listed = await cliAsync(server, 'audit', 'list', '--object', `user:${made.json.user.id}`, '-o', 'json');
  assert.equal(listed.status, 0, listed.stderr);
  assert.deepEqual(JSON.parse(listed.stdout).map((e: Entry) => e.action), ['user.create']);
  const byActor = (await api(server, 'GET', `/api/v1/audit?since=1h&actor=${encodeURIComponent(got[0]!.actor)}`)).json.entries;
  assert.equal(byActor.length, 1);
  assert.equal((await api(server, 'GET', '/api/v1/audit?since=yesterday')).status, 400);
  const exported = await cliAsync(server, 'audit', 'export', '--since', '24h');
  assert.equal(exported.status, 0, exported.stderr);
  const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.at(-1).id, byEngine.at(-1)!.id);
  // Cursor pagination walks every entry once.
  const seen: number[] = [];
  let cursor: string | null = '0';
  while (cursor !== null) {
    const page: { entries: Entry[]; nextCursor: string | null } = (await api(server, 'GET', `/api/v1/audit?limit=2&cursor=${cursor}`)).json;
    seen.push(...page.entries.map((e) => e.id));
    cursor = page.nextCursor;
  }
  assert.deepEqual(seen, lines.map((e: Entry) => e.id));
});

test('the console (session + CSRF), a real tailscaled registration, its deletion and an SSH check approval', async () => {
  // Console: log in with the API key (the login form's token), then create a user with the session's CSRF token.
  const loginPage = await fetch(`${server.url}/admin/login`);
  const loginToken = /name="_csrf" value="([^"]+)"/.exec(await loginPage.text())![1]!;
  const loginCookie = loginPage.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const login = await fetch(`${server.url}/admin/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: loginCookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: loginToken, key: server.apiKey, next: '/admin/users' }),
  });
  assert.equal(login.status, 303);
  const session = login.headers.getSetCookie().map((c) => c.split(';')[0]).filter((c) => c.startsWith('tailplane_session=')).join('; ');
  const usersPage = await (await fetch(`${server.url}/admin/users`, { headers: { cookie: session } })).text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(usersPage)![1]!;
  let mark = await lastId();
  const made = await fetch(`${server.url}/admin/users`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: session, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf, name: 'ursula' }),
  });
  assert.ok(made.status < 400, `console POST: ${made.status}`);
  let got = await entriesAfter(mark);
  assert.equal(got.length, 1, JSON.stringify(got));
  assert.deepEqual([got[0]!.door, got[0]!.action], ['console', 'user.create']);
  assert.match(got[0]!.actor, /^apikey:\w+$/);

  // A real tailscaled registers with an auth key: one node.create through the control door; deleting it: one node.delete.
  const key = (await api(server, 'POST', '/api/v1/preauthkey', { user: '1', reusable: true })).json.preAuthKey.key;
  mark = await lastId();
  const d = await harness.start({ name: 'real' });
  const up = await d.up({ loginServer: server.url, authKey: key, hostname: 'real', timeoutMs: 90_000 });
  assert.equal(up.code, 0, up.stderr + up.stdout);
  got = (await entriesAfter(mark)).filter((e) => e.action.startsWith('node.'));
  assert.deepEqual(got.map((e) => [e.door, e.action]), [['control', 'node.create']], JSON.stringify(got));
  assert.match(got[0]!.actor, /^machine:[0-9a-f]{12}$/);
  assert.match(got[0]!.source, /^127\.0\.0\.1$/, 'the source address, as the admin doors record it');
  const nodeObject = got[0]!.object;
  mark = await lastId();
  assert.equal((await cliAsync(server, 'nodes', 'delete', 'real')).status, 0);
  got = await entriesAfter(mark);
  assert.deepEqual(got.map((e) => [e.door, e.action, e.object]), [['cli', 'node.delete', nodeObject]], JSON.stringify(got));

  // An SSH check: the destination's request is recorded as that node's, the approval as the API key's.
  const policy = `{"tagOwners": {"tag:server": []}, "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
    "ssh": [{"action": "check", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["deploy"], "checkPeriod": "1h"}]}`;
  assert.equal((await api(server, 'PUT', '/api/v1/policy', { policy })).status, 200);
  const machines = { dst: generateKeyPair(), src: generateKeyPair() };
  const keys = {
    dst: (await api(server, 'POST', '/api/v1/preauthkey', { aclTags: ['tag:server'] })).json.preAuthKey.key,
    src: key,
  };
  const ids: Record<string, number> = {};
  for (const name of ['dst', 'src'] as const) {
    const body = JSON.stringify({ Version: 130, NodeKey: `nodekey:${randomBytes(32).toString('hex')}`, Auth: { AuthKey: keys[name] }, Hostinfo: { Hostname: `ssh-${name}` } });
    assert.equal((await noise(machines[name], '/machine/register', 'POST', body)).status, 200);
    ids[name] = (await api(server, 'GET', '/api/v1/node')).json.nodes.find((n: { name: string }) => n.name === `ssh-${name}`).id;
  }
  mark = await lastId();
  const held = await noise(machines.dst, `/machine/ssh/action/from/${ids.src}/to/${ids.dst}?ssh_user=deploy&local_user=deploy`);
  assert.equal(held.status, 200, JSON.stringify(held.json));
  const checkId = /tailplane ssh approve (\S+)/.exec(held.json.message)![1]!;
  got = await entriesAfter(mark);
  assert.deepEqual(got.map((e) => [e.actor, e.door, e.action, e.object]), [[`node:${ids.dst}`, 'control', 'ssh-check.pending', `ssh-check:${checkId}`]]);
  mark = got[0]!.id;
  assert.equal((await api(server, 'POST', `/api/v1/ssh/checks/${checkId}/approve`)).status, 200);
  got = await entriesAfter(mark);
  assert.deepEqual(got.map((e) => [e.door, e.action, e.object]), [['api-v1', 'ssh-check.approved', `ssh-check:${checkId}`]]);
});

test('the console audit page shows an auditor the entries of one object, newest first', async () => {
  const auditorKey = await cliAsync(server, 'apikeys', 'create', '--role', 'auditor');
  assert.equal(auditorKey.status, 0, auditorKey.stderr);
  assert.equal((await api(server, 'POST', '/api/v1/user/1/rename/alice2')).status, 200);
  const browser = await launchBrowser();
  try {
    const page = browser.pages()[0] ?? (await browser.newPage());
    await page.goto(`${server.url}/admin/audit?object=user:1`);
    await page.getByLabel('Admin API key').fill(auditorKey.stdout.trim());
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(/\/admin\/audit/);
    assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Audit log');
    const rows = await page.locator('tbody tr').allInnerTexts();
    assert.equal(rows.length, 2, rows.join('\n'));
    assert.match(rows[0]!, /user\.update\s+user:1\s+name: "alice" → "alice2"/, 'a rename says before → after');
    assert.match(rows[1]!, /api-v1\s+user\.create\s+user:1\s+alice/);
    assert.deepEqual(await seriousA11yViolations(page), []);
  } finally {
    await browser.close();
  }
});

test('an acknowledged write has its entry after kill -9', async () => {
  const made = await api(server, 'POST', '/api/v1/user', { name: 'carol' });
  assert.equal(made.status, 200);
  await server.stop('SIGKILL');
  server = await spawnServer({ dataDir: server.dataDir });
  const entries: Entry[] = (await api(server, 'GET', `/api/v1/audit?object=user:${made.json.user.id}`)).json.entries;
  assert.deepEqual(entries.map((e) => e.action), ['user.create']);
  assert.equal((await cliAsync(server, 'audit', 'verify')).status, 0);
});

test('verify names the first broken entry after an edit or a delete; pruning keeps the chain verifiable', async () => {
  for (const name of ['dave', 'erin', 'frank']) assert.equal((await api(server, 'POST', '/api/v1/user', { name })).status, 200);
  const ok = await cliAsync(server, 'audit', 'verify');
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /intact/);
  const ids: number[] = (await api(server, 'GET', '/api/v1/audit')).json.entries.map((e: Entry) => e.id);
  const db = new Database(join(server.dataDir, 'tailplane.sqlite'));
  try {
    const victim = ids.at(-3)!;
    const original = db.prepare('SELECT summary FROM audit_log WHERE id = ?').get(victim) as { summary: string };
    db.prepare('UPDATE audit_log SET summary = ? WHERE id = ?').run('nothing happened', victim);
    let r = await cliAsync(server, 'audit', 'verify');
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`broken at entry ${victim}\\b.*changed`));
    db.prepare('UPDATE audit_log SET summary = ? WHERE id = ?').run(original.summary, victim);
    assert.equal((await cliAsync(server, 'audit', 'verify')).status, 0);

    const deleted = ids.at(-2)!;
    const row = db.prepare('SELECT * FROM audit_log WHERE id = ?').get(deleted);
    db.prepare('DELETE FROM audit_log WHERE id = ?').run(deleted);
    r = await cliAsync(server, 'audit', 'verify');
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`broken at entry ${deleted + 1}\\b.*deleted`));
    db.prepare('INSERT INTO audit_log (id, time, actor, door, source, action, object, summary, prev_hash, hash) VALUES (@id, @time, @actor, @door, @source, @action, @object, @summary, @prev_hash, @hash)').run(row);
  } finally {
    db.close();
  }
  assert.equal((await cliAsync(server, 'audit', 'verify')).status, 0);

  // Prune everything so far: the anchor keeps the chain verifiable and the prune itself is an entry.
  await new Promise((r) => setTimeout(r, 5));
  const pruned = await api(server, 'POST', '/api/v1/audit/prune', { olderThanDays: 0 });
  assert.equal(pruned.status, 200, JSON.stringify(pruned.json));
  assert.ok(pruned.json.pruned >= ids.length, JSON.stringify(pruned.json));
  const left: Entry[] = (await api(server, 'GET', '/api/v1/audit')).json.entries;
  assert.deepEqual(left.map((e) => e.action), ['audit.prune']);
  assert.equal((await api(server, 'POST', '/api/v1/user', { name: 'grace' })).status, 200);
  const after = await cliAsync(server, 'audit', 'verify');
  assert.equal(after.status, 0, after.stderr);
  assert.match(after.stdout, /2 entries after pruned entry/);
});
