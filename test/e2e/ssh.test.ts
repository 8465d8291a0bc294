/**
 * Tailscale SSH end to end, with the real OpenSSH client through real tailscaled peers: a `--ssh` server
 * (tag:server), alice (accept rule), bob (no rule) and carol (check rule). Sessions run `echo hello` as a
 * throw-away local user; check sessions are held until `tailplane ssh approve|deny` or the timeout.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { createHarness, runCommand, type Daemon, type RunningCommand } from '../harness/tailscaled.ts';
import { peerBinaries } from '../peers/build.ts';
import { dialNoise, h2Request, h2Session } from '../control/noise-client.ts';
import { api, cliAsync, inProcessServer, tempDir } from '../helpers/server.ts';

/** The local account sessions log in as; created for this file and removed after it. */
const local = `tpssh${process.pid % 100_000}`;
/** Short, so the timeout case is quick (the default is 10 minutes), yet room for a few CLI runs on a busy machine. */
const checkTimeoutSeconds = 25;
const bins = peerBinaries();
const harness = createHarness();
const scratch = tempDir('tp-ssh-');
let server: Awaited<ReturnType<typeof inProcessServer>>;
let host: Daemon;
let alice: Daemon;
let bob: Daemon;
let carol: Daemon;
let hostIp: string;
let createdUser = false;

const policy = (opts: { aliceRule: boolean; aliceTest: 'accept' | 'deny' }) => {
  const aliceExpects = opts.aliceTest === 'accept' ? `"accept": ["${local}"], "deny": ["root"]` : `"deny": ["${local}", "root"]`;
  return `{
  "tagOwners": { "tag:server": ["alice@example.com"] },
  "acls": [{ "action": "accept", "src": ["autogroup:member"], "dst": ["tag:server:22"] }],
  "ssh": [
    ${opts.aliceRule ? `{ "action": "accept", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["${local}"] },` : ''}
    { "action": "check", "src": ["carol@example.com"], "dst": ["tag:server"], "users": ["${local}"] },
  ],
  "sshTests": [
    { "src": "alice@example.com", "dst": ["tag:server"], ${aliceExpects} },
    { "src": "carol@example.com", "dst": ["tag:server"], "check": ["${local}"], "deny": ["root"] },
    { "src": "bob@example.com", "dst": ["tag:server"], "deny": ["${local}", "root"] },
  ],
}`;
};

/** `ssh user@host cmd` with OpenSSH, tunnelled through the client's tailscaled (userspace networking). */
function ssh(from: Daemon, user: string, cmd = 'echo hello'): RunningCommand {
  return runCommand(
    'ssh',
    [
      '-F', '/dev/null',
      '-o', `ProxyCommand=${bins.tailscale} --socket=${from.socket} nc %h %p`,
      '-o', 'StrictHostKeyChecking=no',
      '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'BatchMode=yes',
      `${user}@${hostIp}`,
      cmd,
    ],
    60_000,
  );
}

const setPolicyFile = async (text: string) => {
  const file = join(scratch, `policy-${randomBytes(4).toString('hex')}.hujson`);
  writeFileSync(file, text);
  return cliAsync(server, 'policy', 'set', '--file', file);
};

/** `tailplane ssh list -o json`. */
async function listChecks(): Promise<{ id: string; state: string }[]> {
  const r = await cliAsync(server, 'ssh', 'list', '-o', 'json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** True when the session is still waiting after `ms`. */
const stillHeld = (session: RunningCommand, ms: number) =>
  Promise.race([session.done.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), ms))]);

/** Starts a carol session and returns it with the id of the check that holds it, as the banner and the list show it. */
async function heldSession(): Promise<{ session: RunningCommand; id: string }> {
  const session = ssh(carol, local);
  const banner = await carol.waitFor(() => /tailplane ssh approve (\S+)/.exec(session.output()), 30_000, 'the check banner in ssh output');
  const id = banner[1]!;
  const check = (await api(server, 'GET', '/api/v1/ssh/checks')).json.checks.find((c: { id: string }) => c.id === id);
  assert.equal(check?.state, 'pending', `check ${id} is listed as pending`);
  assert.equal(check.srcUser.name, 'carol@example.com');
  assert.equal(check.localUser, local);
  return { session, id };
}

before(async () => {
  if (process.getuid?.() !== 0) throw new Error('the Tailscale SSH tests run sessions as a local user: run them as root (CI does)');
  if (spawnSync('id', [local]).status !== 0) {
    const r = spawnSync('useradd', ['--create-home', '--shell', '/bin/sh', local], { encoding: 'utf8' });
    assert.equal(r.status, 0, `useradd ${local}: ${r.stderr}`);
    createdUser = true;
  }
  server = await inProcessServer({ ssh: { checkTimeoutSeconds } });
  const t = server.tailnet;
  const user = (name: string) => t.users.create({ name, email: `${name}@example.com` });
  const key = (userId: number | null, tags: string[] = []) => t.preAuthKeys.create({ userId, tags }).key;
  const join = async (name: string, authKey: string, extraArgs: string[] = []) => {
    const d = await harness.start({ name });
    const r = await d.up({ loginServer: server.url, authKey, hostname: name, extraArgs: ['--accept-dns=false', ...extraArgs], timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    return d;
  };
  const [a, b, c] = [user('alice'), user('bob'), user('carol')];
  // Tags must be declared before a key carries one; the tests below set the policy they are about.
  t.setPolicy('{"tagOwners": {"tag:server": ["alice@example.com"]}, "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}');
  host = await join('sshhost', key(null, ['tag:server']), ['--ssh']);
  alice = await join('alicelaptop', key(a.id));
  bob = await join('boblaptop', key(b.id));
  carol = await join('carollaptop', key(c.id));
  hostIp = (await host.ip())[0]!;
});

after(async () => {
  await harness.cleanup();
  await server?.close();
  if (createdUser) spawnSync('userdel', ['--remove', local]);
});

test('sshTests gate policy set: a policy whose accept/check/deny tests fail is refused, a true one is stored', async () => {
  const before = server.tailnet.policy();
  const wrong = await setPolicyFile(policy({ aliceRule: true, aliceTest: 'deny' }));
  assert.equal(wrong.status, 1, wrong.stdout);
  assert.match(wrong.stderr, new RegExp(`sshTests failed: alice@example.com ssh to tag:server as "${local}" should be deny but is accept`));
  assert.equal(server.tailnet.policy(), before, 'the refused policy changed nothing');
  const right = await setPolicyFile(policy({ aliceRule: true, aliceTest: 'accept' }));
  assert.equal(right.status, 0, right.stderr);
});

test('accept: alice runs echo hello as the allowed local user, is refused as root, and tailscale ssh verifies the host key', async () => {
  try {
    // The host's SSH host keys reach alice in the netmap (Hostinfo.sshHostKeys of the peer).
    const keys = await alice.waitFor(async () => {
      const peers = Object.values((await alice.status()).Peer ?? {});
      return peers.find((p) => p.TailscaleIPs?.includes(hostIp))?.sshHostKeys as string[] | undefined;
    }, 30_000, "the host's SSH host keys in alice's netmap");
    assert.ok(keys.some((k) => k.startsWith('ssh-ed25519 ')), JSON.stringify(keys));

    const ok = await alice.waitFor(async () => {
      const r = await ssh(alice, local).done;
      return r.code === 0 && r;
    }, 30_000, 'an accepted ssh session');
    assert.equal(ok.stdout.trim(), 'hello');

    const root = await ssh(alice, 'root').done;
    assert.notEqual(root.code, 0);
    assert.match(root.stderr, /tailnet policy does not permit you to SSH as user "root"/);

    // tailscale ssh writes a known_hosts file from the netmap and runs ssh with StrictHostKeyChecking=yes.
    const home = tempDir('tp-ssh-home-');
    const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: home };
    const viaTailscale = await runCommand(bins.tailscale, [`--socket=${alice.socket}`, 'ssh', `${local}@${hostIp}`, 'echo', 'hello'], 60_000, env).done;
    assert.equal(viaTailscale.code, 0, viaTailscale.stderr);
    assert.equal(viaTailscale.stdout.trim(), 'hello');
  } catch (err) {
    host.dumpLogs();
    throw err;
  }
});

test('a user outside every rule is refused', async () => {
  const r = await ssh(bob, local).done;
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /tailnet policy does not permit you to SSH to this node/);
  assert.equal(r.stdout, '');
});

test('forged SSH action requests (another node, unknown id, malformed URL) get 4xx and approve nothing', async () => {
  const { session, id } = await heldSession();
  const port = Number(new URL(server.url).port);
  const key = (await (await fetch(`${server.url}/key?v=130`)).json()) as { publicKey: string };
  const client = await dialNoise(port, Buffer.from(key.publicKey.slice('mkey:'.length), 'hex'));
  const h2 = h2Session(client);
  try {
    // A real node of the tailnet (bob's), but not the destination of the held session.
    const { key: authKey } = server.tailnet.preAuthKeys.create({ userId: server.tailnet.users.list().find((u) => u.name === 'bob')!.id });
    const nodeKey = `nodekey:${randomBytes(32).toString('hex')}`;
    const reg = await h2Request(h2, '/machine/register', JSON.stringify({ Version: 130, NodeKey: nodeKey, Auth: { AuthKey: authKey }, Hostinfo: { Hostname: 'forger' } }));
    assert.equal(reg.status, 200, reg.body.toString());
    const hostId = server.tailnet.nodes.list().find((n) => n.givenName === 'sshhost')!.id;
    const carolId = server.tailnet.nodes.list().find((n) => n.givenName === 'carollaptop')!.id;
    const get = async (path: string) => (await h2Request(h2, path, '', 'GET')).status;
    assert.equal(await get(`/machine/ssh/action/wait/${id}`), 403, "another node polls the held session's check");
    assert.equal(await get(`/machine/ssh/action/from/${carolId}/to/${hostId}?ssh_user=${local}&local_user=${local}`), 403, 'another node opens a check for the host');
    assert.equal(await get(`/machine/ssh/action/wait/${'x'.repeat(12)}`), 404, 'an unknown check id');
    assert.equal(await get('/machine/ssh/action/wait/not%20an%20id'), 400, 'a malformed check id');
    assert.equal(await get(`/machine/ssh/action/wait/${id}/approve`), 400, 'a path that is no action');
    assert.equal(await get(`/machine/ssh/action/from/abc/to/${hostId}`), 400, 'a malformed node id');
    assert.equal(await get('/machine/ssh/action/'), 400, 'no action at all');
  } finally {
    h2.destroy();
    client.conn.destroy();
  }
  const now = (await api(server, 'GET', '/api/v1/ssh/checks')).json.checks as { id: string; state: string }[];
  assert.deepEqual(now.map((c) => [c.id, c.state]), [[id, 'pending']], 'still exactly the one pending check, approved by nobody');
  assert.ok(await stillHeld(session, 1_000), 'the session is still held');
  assert.equal((await api(server, 'POST', `/api/v1/ssh/checks/${id}/deny`)).status, 200);
  const r = await session.done;
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, '');
});

test('check: held until approved, a second session within checkPeriod is not held; deny and timeout fail with a message', async () => {
  try {
    const denied = await heldSession();
    const d = await cliAsync(server, 'ssh', 'deny', denied.id);
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stdout, new RegExp(`SSH check ${denied.id} denied: carol@example.com`));
    const dr = await denied.session.done;
    assert.notEqual(dr.code, 0);
    assert.match(dr.stderr, new RegExp(`tailplane: access denied: an admin \\(api-key:\\S+\\) denied SSH check ${denied.id}`));

    const started = Date.now();
    const timedOut = await heldSession();
    const tr = await timedOut.session.done;
    assert.notEqual(tr.code, 0);
    assert.match(tr.stderr, new RegExp(`tailplane: access denied: nobody approved SSH check ${timedOut.id} in time`));
    assert.ok(Date.now() - started >= checkTimeoutSeconds * 1000 - 500, 'failed only at the timeout');
    const late = await cliAsync(server, 'ssh', 'approve', timedOut.id);
    assert.equal(late.status, 1, 'a timed-out check cannot be approved afterwards');
    assert.match(late.stderr, /already timed out/);

    const held = await heldSession();
    assert.ok(await stillHeld(held.session, 2_000), 'the session waits for the approval');
    const a = await cliAsync(server, 'ssh', 'approve', held.id);
    assert.equal(a.status, 0, a.stderr);
    const ar = await held.session.done;
    assert.equal(ar.code, 0, ar.stderr);
    assert.equal(ar.stdout.trim(), 'hello');

    // Within checkPeriod (12 h by default) the next session of carol to the host is not held.
    const second = await ssh(carol, local).done;
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout.trim(), 'hello');
    assert.doesNotMatch(second.stderr, /needs approval/);
    const listed = await listChecks();
    assert.deepEqual(listed.map((c) => [c.id, c.state]), [[held.id, 'approved']], 'no new check was opened');

    // Every decision is on record in the database, where an audit log can read it.
    const db = new Database(join(server.dataDir, 'tailplane.sqlite'), { readonly: true });
    const rows = db.prepare('SELECT id, state, src_user, dst_node, local_user, decided_by, decided_at FROM ssh_checks').all() as Record<string, string | null>[];
    db.close();
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const [id, state] of [[denied.id, 'denied'], [timedOut.id, 'timeout'], [held.id, 'approved']] as const) {
      const row = byId.get(id);
      assert.equal(row?.state, state, id);
      assert.equal(row?.src_user, 'carol@example.com');
      assert.equal(row?.dst_node, 'sshhost');
      assert.equal(row?.local_user, local);
      assert.ok(row?.decided_at);
      assert.equal(row?.decided_by === null, state === 'timeout');
    }
  } catch (err) {
    host.dumpLogs();
    throw err;
  }
});

test('a policy change that removes the rule ends new sessions within 5 s of policy set', async () => {
  const before = await ssh(alice, local).done;
  assert.equal(before.code, 0, before.stderr);
  const r = await setPolicyFile(policy({ aliceRule: false, aliceTest: 'deny' }));
  assert.equal(r.status, 0, r.stderr);
  const setAt = Date.now();
  const refused = await alice.waitFor(async () => {
    const s = await ssh(alice, local).done;
    return s.code !== 0 && s;
  }, 5_000, 'new sessions refused after the rule was removed');
  assert.match(refused.stderr, /tailnet policy does not permit you to SSH/);
  assert.ok(Date.now() - setAt < 5_000);
});
