/**
 * SSH check mode at the protocol level, over the real Noise transport of a real server: nodes registered with
 * their own machine keys fetch hold-and-delegate URLs as a destination tailscaled does. Covers what the
 * real-ssh test cannot cheaply: a restart keeps a pending check pending, checkPeriod "always", tagged sources.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { generateKeyPair, type KeyPair } from '../../src/control/noise/primitives.ts';
import { defaultConfig } from '../../src/config/config.ts';
import { startServer, type Server } from '../../src/server.ts';
import { newCheckId } from '../../src/state/ssh-checks.ts';
import { cliAsync, tempDir } from '../helpers/server.ts';
import { noiseRequest } from './noise-client.ts';

const dataDir = tempDir();
let server: Server;
const machines = { dst: generateKeyPair(), alice: generateKeyPair(), ci: generateKeyPair() };
const ids: Record<keyof typeof machines, number> = { dst: 0, alice: 0, ci: 0 };

const start = () => {
  const d = defaultConfig();
  return startServer({ ...d, listenAddr: '127.0.0.1:0', dataDir, derp: { ...d.derp, enabled: false, stunListenAddr: '' }, log: { level: 'silent' }, metrics: { listenAddr: '' } });
};

const noise = (machine: KeyPair, path: string, method = 'GET', body = '') => noiseRequest(server.url, machine, path, method, body);

const policy = (period: string) => `{
  "tagOwners": { "tag:server": [], "tag:ci": [] },
  "ssh": [
    { "action": "check", "src": ["alice@example.com", "tag:ci"], "dst": ["tag:server"], "users": ["deploy"], "checkPeriod": "${period}" },
  ],
}`;

const from = (src: number, user = 'deploy') => `/machine/ssh/action/from/${src}/to/${ids.dst}?ssh_user=${user}&local_user=${user}`;
const waitPath = (holdAndDelegate: string) => new URL(holdAndDelegate).pathname;

before(async () => {
  server = await start();
  const t = server.tailnet;
  const alice = t.users.create({ name: 'alice', email: 'alice@example.com' });
  t.setPolicy(policy('12h'));
  const keys = { dst: t.preAuthKeys.create({ userId: null, tags: ['tag:server'] }), alice: t.preAuthKeys.create({ userId: alice.id }), ci: t.preAuthKeys.create({ userId: null, tags: ['tag:ci'] }) };
  for (const name of ['dst', 'alice', 'ci'] as const) {
    const body = JSON.stringify({ Version: 130, NodeKey: `nodekey:${randomBytes(32).toString('hex')}`, Auth: { AuthKey: keys[name].key }, Hostinfo: { Hostname: name } });
    const r = await noise(machines[name], '/machine/register', 'POST', body);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    ids[name] = t.nodes.list().find((n) => n.hostname === name)!.id;
  }
});

after(async () => {
  await server.close();
});

test('a restart keeps a pending check pending; only a person approves it, and the approval lasts checkPeriod', async () => {
  const first = await noise(machines.dst, from(ids.alice));
  assert.equal(first.status, 200);
  assert.match(first.json.message, /tailplane ssh approve (\S+)/);
  const id = /tailplane ssh approve (\S+)/.exec(first.json.message)![1]!;
  assert.equal(waitPath(first.json.holdAndDelegate), `/machine/ssh/action/wait/${id}`);

  await server.close();
  server = await start();
  assert.deepEqual(server.tailnet.sshChecks.list().map((c) => [c.id, c.state]), [[id, 'pending']]);
  // The node polls again after the restart: still held, until a person answers.
  const poll = noise(machines.dst, waitPath(first.json.holdAndDelegate));
  await new Promise((r) => setTimeout(r, 300));
  server.tailnet.sshChecks.approve(id, 'test');
  const answer = await poll;
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.json, { accept: true, allowAgentForwarding: true, allowLocalPortForwarding: true, allowRemotePortForwarding: true });

  const again = await noise(machines.dst, from(ids.alice));
  assert.equal(again.json.accept, true, 'within checkPeriod the next session is not held');
  const approval = server.tailnet.sshChecks.list().find((c) => c.id === id)!;
  const hours = (Date.parse(approval.validUntil!) - Date.parse(approval.decidedAt!)) / 3_600_000;
  assert.equal(hours, 12);
});

test('checkPeriod "always" holds every session, even with an earlier approval of that user', async () => {
  server.tailnet.setPolicy(policy('always'));
  const r = await noise(machines.dst, from(ids.alice));
  assert.equal(r.status, 200);
  assert.ok(r.json.holdAndDelegate, JSON.stringify(r.json));
  const id = new URL(r.json.holdAndDelegate).pathname.split('/').pop()!;
  const approved = server.tailnet.sshChecks.approve(id, 'test');
  assert.equal(approved.validUntil, null, 'an "always" approval admits only its own session');
  const next = await noise(machines.dst, from(ids.alice));
  assert.ok(next.json.holdAndDelegate, 'the next session is held again');
  server.tailnet.sshChecks.deny(new URL(next.json.holdAndDelegate).pathname.split('/').pop()!, 'test');
});

test('tagged sources cannot use check mode; a session the policy does not hold is refused', async () => {
  const before = server.tailnet.sshChecks.list().length;
  const tagged = await noise(machines.dst, from(ids.ci));
  assert.equal(tagged.status, 200);
  assert.equal(tagged.json.reject, true);
  assert.match(tagged.json.message, /tagged devices \(tag:ci\) cannot use it/);
  const root = await noise(machines.dst, from(ids.alice, 'root'));
  assert.equal(root.json.reject, true);
  assert.match(root.json.message, /policy does not hold this session for a check/);
  assert.equal(server.tailnet.sshChecks.list().length, before, 'no check opened');
  // The source node is not the destination: it may not open checks for the destination.
  assert.equal((await noise(machines.alice, from(ids.alice))).status, 403);
  assert.equal((await noise(machines.dst, from(ids.alice), 'POST')).status, 405);
});

test('check ids never start with "-", which the CLI would read as a flag', async () => {
  // base64url starts one id in 64 with "-": 5,000 draws miss that with probability below 1e-34.
  const ids = Array.from({ length: 5_000 }, newCheckId);
  assert.ok(ids.every((id) => /^[A-Za-z0-9_][A-Za-z0-9_-]{11}$/.test(id)), ids.find((id) => id[0] === '-'));
  // What the fix prevents: such an id given to the CLI is refused as an unknown flag (exit 2), not looked up.
  const r = await cliAsync({ url: server.url, apiKey: 'unused' }, 'ssh', 'approve', '-AbCdEfGhIjK');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown flag -AbCdEfGhIjK/);
});
