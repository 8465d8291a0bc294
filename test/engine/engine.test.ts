// The plan/apply/drift engine against real servers: the healthcare example end to end through the CLI, drift made by
// hand, a policy whose test fails, a server killed in the middle of an apply, and desired-state validation.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createAdminClient } from '../../src/client/admin-client.ts';
import { defaultConfig } from '../../src/config/config.ts';
import { converge, loadDesired, planChanges, readLive, type DesiredState } from '../../src/engine/index.ts';
import { api, inProcessServer, repoRoot, spawnServer, tempDir, type CliResult } from '../helpers/server.ts';

const example = join(repoRoot, 'examples', 'desired', 'healthcare.hujson');
// The embedded DERP/STUN relay binds a fixed UDP port; these tests do not need it.
const noDerp = { TAILPLANE_DERP_ENABLED: 'false' };

/** The CLI without blocking this process (the in-process server must keep answering while it runs). */
function run(server: { url: string; apiKey: string }, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(repoRoot, 'bin', 'tailplane.js'), ...args],
      { env: { ...process.env, TAILPLANE_URL: server.url, TAILPLANE_API_KEY: server.apiKey }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const hex = (n: number) => n.toString(16).padStart(64, '0');

test('healthcare example: plan, apply, clean re-plan, drift by hand, apply restores', async () => {
  const server = await inProcessServer({ derp: { ...defaultConfig().derp, enabled: false } });
  try {
    const register = (i: number, hostname: string, hostinfo: Record<string, unknown> = {}) =>
      server.tailnet.nodes.register({
        machineKey: `mkey:${hex(i)}`, nodeKey: `nodekey:${hex(i)}`, hostname, hostinfo, userId: null, tags: ['tag:temp'], ephemeral: false, method: 'authkey',
      });
    register(1, 'clinic-router', { RoutableIPs: ['10.20.0.0/16'] });
    register(2, 'records-db');
    register(3, 'portal');
    register(4, 'visitor-laptop');

    const plan = await run(server, 'plan', '-f', example);
    assert.equal(plan.status, 2, plan.stderr + plan.stdout);
    for (const line of ['+ user.ngozi', '+ policy', '~ dns', '~ node.clinic-router', 'tags: ["tag:temp"] -> ["tag:router"]',
      'approvedRoutes: [] -> ["10.20.0.0/16"]', '+ preauthkey.uzo-laptop', 'Unmanaged nodes: visitor-laptop']) {
      assert.ok(plan.stdout.includes(line), `plan lacks ${line}:\n${plan.stdout}`);
    }
    assert.doesNotMatch(plan.stdout, /\x1b\[/, 'no colour when stdout is not a terminal');
    const json = JSON.parse((await run(server, 'plan', '-f', example, '--json')).stdout);
    assert.deepEqual(json.changes.map((c: { address: string }) => c.address), [
      'user.ngozi', 'user.emeka', 'user.uzo', 'policy', 'dns', 'node.clinic-router', 'node.records-db', 'node.portal',
      'preauthkey.clinic-router', 'preauthkey.uzo-laptop',
    ]);

    const unconfirmed = await run(server, 'apply', '-f', example);
    assert.equal(unconfirmed.status, 1);
    assert.match(unconfirmed.stderr, /stdin is not a terminal; pass --auto-approve/);
    assert.equal(server.tailnet.users.list().length, 0, 'nothing applied without confirmation');

    const applied = await run(server, 'apply', '-f', example, '--auto-approve');
    assert.equal(applied.status, 0, applied.stderr + applied.stdout);
    assert.match(applied.stdout, /\[10\/10\] preauthkey\.uzo-laptop: created/);
    assert.match(applied.stdout, /pre-auth key uzo-laptop \(id \d+, shown once\): tpkey-auth-/);
    const router = server.tailnet.nodes.list().find((n) => n.hostname === 'clinic-router')!;
    assert.deepEqual([router.tags, router.approvedRoutes, router.expiry], [['tag:router'], ['10.20.0.0/16'], null]);
    assert.equal(server.tailnet.users.byName('uzo')?.email, 'uzo@clinic.example');
    assert.equal(server.tailnet.dns().baseDomain, 'clinic.tailnet.internal');

    const again = await run(server, 'plan', '-f', example);
    assert.equal(again.status, 0, again.stdout);
    assert.match(again.stdout, /No changes/);

    // Three changes made outside code.
    const portal = await run(server, 'nodes', 'tag', 'portal', '--tags', 'tag:db');
    assert.equal(portal.status, 0, portal.stderr);
    const dns = await api(server, 'PUT', '/api/v1/dns', { ...server.tailnet.dns(), nameservers: ['8.8.8.8'] });
    assert.equal(dns.status, 200);
    const handPolicy = join(server.dataDir, 'hand.hujson');
    writeFileSync(handPolicy, server.tailnet.policy()!.text.replace('"tag:server:22,80,443"', '"tag:server:*"'));
    const set = await run(server, 'policy', 'set', '-f', handPolicy);
    assert.equal(set.status, 0, set.stderr);

    const md = join(server.dataDir, 'drift.md');
    const js = join(server.dataDir, 'drift.json');
    const drift = await run(server, 'drift', '-f', example, '--markdown', md, '--json', js);
    assert.equal(drift.status, 2, drift.stderr + drift.stdout);
    const report = JSON.parse(readFileSync(js, 'utf8'));
    assert.deepEqual(report.items.map((i: { address: string }) => i.address), ['policy', 'dns', 'node.portal']);
    assert.deepEqual(report.items.map((i: { diffs: { path: string }[] }) => i.diffs.map((d) => d.path)), [['acls[1].dst'], ['nameservers'], ['tags']]);
    assert.deepEqual(report.items[2].diffs[0], { path: 'tags', before: ['tag:db'], after: ['tag:server'] });
    assert.deepEqual(report.unmanaged.nodes, ['visitor-laptop']);
    assert.equal(readFileSync(md, 'utf8'), drift.stdout.replace(/\n$/, ''));
    assert.match(drift.stdout, /\*\*3 objects changed outside code\*\*/);
    assert.match(drift.stdout, /\| `node\.portal` \| changed \| `tags` \| `\["tag:db"\]` \| `\["tag:server"\]` \|/);
    assert.match(drift.stdout, /### Unmanaged live objects\n\n- node `visitor-laptop`: not declared/);

    const restore = await run(server, 'apply', '-f', example, '--auto-approve');
    assert.equal(restore.status, 0, restore.stderr + restore.stdout);
    assert.match(restore.stdout, /Apply complete: 3 change\(s\) applied/);
    const clean = await run(server, 'drift', '-f', example);
    assert.equal(clean.status, 0, clean.stdout);
    assert.match(clean.stdout, /No drift/);
  } finally {
    await server.close();
  }
});

test('a desired policy whose test fails is refused and nothing changes', async () => {
  const server = await spawnServer({ env: noDerp });
  try {
    const desired: DesiredState = {
      users: [{ name: 'ada' }, { name: 'bo' }],
      groups: { 'group:ops': ['ada'] },
      tags: { 'tag:db': ['group:ops'] },
      acls: [{ action: 'accept', src: ['group:ops'], dst: ['tag:db:5432'] }],
      tests: [{ src: 'bo@', accept: ['tag:db:5432'] }],
      dns: { nameservers: ['9.9.9.9'] },
    };
    const file = join(server.dataDir, 'failing.json');
    writeFileSync(file, JSON.stringify(desired));
    const r = await run(server, 'apply', '-f', file, '--auto-approve');
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stderr, /refuses the policy/);
    assert.match(r.stderr, /test failed: bo@ should accept tag:db:5432 but it is denied/);
    assert.equal((await api(server, 'GET', '/api/v1/user')).json.users.length, 0, 'no user was created');
    assert.equal((await api(server, 'GET', '/api/v1/policy')).json.policy, '');
    assert.deepEqual((await api(server, 'GET', '/api/v1/dns')).json.dns.nameservers, ['1.1.1.1']);

    // The server's own check refuses it too, quoting the failing test.
    const text = planChanges(desired, { users: [], nodes: [], preAuthKeys: [], policy: '', dns: { magicDns: true, baseDomain: 'x', nameservers: [], overrideLocalDns: true, splitDns: {}, searchDomains: [], extraRecords: [] } })
      .changes.find((c) => c.kind === 'policy') as { text: string };
    const check = await api(server, 'POST', '/api/v1/policy/check', { policy: text.text });
    assert.equal(check.status, 400);
    assert.match(check.json.message, /test failed: bo@ should accept tag:db:5432 but it is denied/);

    // The healthcare example with a test that fails on its line 49: plan, apply and drift exit 1 (a plan
    // that cannot be applied is not "changes") and quote line 49 of the file the user wrote, not the generated policy.
    const broken = join(server.dataDir, 'healthcare.hujson');
    const original = readFileSync(example, 'utf8');
    const failing = original.replace('{ "src": "uzo@", "accept": ["tag:server:443"]', '{ "src": "uzo@", "accept": ["tag:server:443", "tag:db:5432"]');
    assert.notEqual(failing, original);
    assert.match(failing.split('\n')[48]!, /"src": "uzo@", "accept": \["tag:server:443", "tag:db:5432"\]/);
    writeFileSync(broken, failing);
    const where = `${broken}:49:51: test failed: uzo@ should accept tag:db:5432 but it is denied`;
    const plan = await run(server, 'plan', '-f', broken);
    assert.equal(plan.status, 1, plan.stdout + plan.stderr);
    assert.ok(plan.stdout.includes(`! ${where}`), plan.stdout);
    const applied = await run(server, 'apply', '-f', broken, '--auto-approve');
    assert.equal(applied.status, 1, applied.stdout + applied.stderr);
    assert.ok(applied.stderr.includes(where), applied.stderr);
    const drift = await run(server, 'drift', '-f', broken);
    assert.equal(drift.status, 1, drift.stdout + drift.stderr);
    assert.ok(drift.stdout.includes(`### The code's policy is refused (apply would stop)\n\n- ${where}`), drift.stdout);
    assert.equal((await api(server, 'GET', '/api/v1/user')).json.users.length, 0, 'still nothing applied');
  } finally {
    await server.stop();
  }
});

test('a server killed in the middle of an apply: the rerun converges', async () => {
  let server = await spawnServer({ env: noDerp });
  const desired = await loadDesired(example);
  const client = createAdminClient({ url: server.url, apiKey: server.apiKey, retries: 1, timeoutMs: 5_000 });
  try {
    const steps: string[] = [];
    const first = await converge(client, desired, {
      onProgress: async (p) => {
        steps.push(`${p.type} ${p.change.address}`);
        if (p.type === 'done' && p.index === 0) await server.stop('SIGKILL');
      },
    });
    assert.ok(first.result.failed, 'the apply stops when the server dies');
    assert.equal(first.result.applied.length, 1);
    assert.deepEqual(steps.slice(0, 3), ['start user.ngozi', 'done user.ngozi', 'start user.emeka']);
    assert.match(first.result.failed.error, /cannot reach the tailplane server|ECONNREFUSED|other side closed/);
  } finally {
    await client.close();
  }

  server = await spawnServer({ dataDir: server.dataDir, env: noDerp });
  const again = createAdminClient({ url: server.url, apiKey: server.apiKey });
  try {
    const second = await converge(again, desired);
    assert.equal(second.result.failed, undefined, second.result.failed?.error);
    assert.equal(second.plan.changes.length, 6, 'of the 7 changes (3 users, policy, DNS, 2 keys) one was done before the crash');
    assert.ok(!second.plan.changes.some((c) => c.address === 'user.ngozi'), 'the user created before the crash is not created again');
    const after = planChanges(desired, await readLive(again));
    assert.deepEqual(after.changes, [], 'converged');
    assert.deepEqual(after.waiting, ['clinic-router', 'records-db', 'portal']);
  } finally {
    await again.close();
    await server.stop();
  }
});

test('desired state: TypeScript modules load, bad documents name the bad field', async () => {
  const server = await spawnServer({ env: noDerp });
  try {
    const dir = tempDir();
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    const mod = join(dir, 'desired.ts');
    writeFileSync(mod, `export const desired = { users: [{ name: 'kemi', email: 'kemi@example.com' }], dns: { magicDns: false } };\n`);
    const plan = await run(server, 'plan', '-f', mod);
    assert.equal(plan.status, 2, plan.stderr);
    assert.match(plan.stdout, /\+ user\.kemi\n\s+\+ email = "kemi@example\.com"/);
    assert.match(plan.stdout, /~ dns\n\s+~ magicDns: true -> false/);

    const bad = join(dir, 'bad.hujson');
    writeFileSync(bad, `{
      // comments and trailing commas are fine
      "users": [{ "displayName": "no name" }, { "name": "x", "nickname": "y" },],
      "groups": { "ops": ["x"] },
      "nodes": [{ "name": "r", "approvedRoutes": ["10.0.0.0/33"] }],
      "preAuthKeys": [{ "name": "k", "user": "x", "tags": ["tag:a"] }],
    }`);
    const r = await run(server, 'plan', '-f', bad);
    assert.equal(r.status, 1);
    for (const line of ['users[0].name: is required', 'users[1].nickname: unknown field', 'groups.ops: key "ops" is not a group name',
      'nodes[0].approvedRoutes[0]: "10.0.0.0/33" is not a CIDR prefix', 'preAuthKeys[0]: give exactly one of "user" or "tags"']) {
      assert.ok(r.stderr.includes(line), `missing "${line}" in:\n${r.stderr}`);
    }
    writeFileSync(bad, '{ "users": [ }');
    const syntax = await run(server, 'plan', '-f', bad);
    assert.equal(syntax.status, 1);
    assert.match(syntax.stderr, /bad\.hujson:1:\d+: invalid character/);
  } finally {
    await server.stop();
  }
});
