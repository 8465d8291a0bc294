/** Route auto-approval and ephemeral clean-up in the state layer, on an in-process server (no clients). */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defaultConfig } from '../../src/config/config.ts';
import { inProcessServer } from '../helpers/server.ts';

let server: Awaited<ReturnType<typeof inProcessServer>>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let seq = 0;
const key = (kind: string) => `${kind}:${(++seq).toString(16).padStart(64, '0')}`;

before(async () => {
  server = await inProcessServer({ node: { ...defaultConfig().node, ephemeralInactivitySeconds: 1 } });
  server.tailnet.users.create({ name: 'alice', email: 'alice@example.com' });
});
after(() => server.close());

const register = (hostname: string, opts: { ephemeral?: boolean; routes?: string[] } = {}) =>
  server.tailnet.nodes.register({
    machineKey: key('mkey'),
    nodeKey: key('nodekey'),
    hostname,
    hostinfo: { Hostname: hostname, RoutableIPs: opts.routes ?? [] },
    userId: server.tailnet.users.list()[0]!.id,
    tags: [],
    ephemeral: opts.ephemeral ?? false,
    method: 'authkey',
  });

test('autoApprovers approve advertised routes, and a policy change never un-approves them', async () => {
  const t = server.tailnet;
  t.setPolicy('{"acls":[{"action":"accept","src":["*"],"dst":["*:*"]}],"autoApprovers":{"routes":{"10.1.0.0/16":["alice@example.com"]},"exitNode":["alice@example.com"]}}');
  const n = register('router', { routes: ['10.1.2.0/24', '10.9.0.0/24', '0.0.0.0/0', '::/0'] });
  await sleep(10);
  assert.deepEqual(t.nodes.get(n.id).approvedRoutes, ['0.0.0.0/0', '10.1.2.0/24', '::/0']);
  t.nodes.approveRoutes(n.id, [...t.nodes.get(n.id).approvedRoutes, '10.9.0.0/24']);
  t.setPolicy('{"acls":[{"action":"accept","src":["*"],"dst":["*:*"]}]}');
  await sleep(10);
  assert.deepEqual(t.nodes.get(n.id).approvedRoutes, ['0.0.0.0/0', '10.1.2.0/24', '10.9.0.0/24', '::/0']);
  t.nodes.remove(n.id);
});

test('an ephemeral node that reconnects in time is kept; offline past the timeout it is deleted', async () => {
  const t = server.tailnet;
  const n = register('eph', { ephemeral: true });
  t.nodes.setOnline(n.id, true);
  t.nodes.setOnline(n.id, false);
  await sleep(600);
  t.nodes.setOnline(n.id, true);
  await sleep(900);
  assert.ok(t.nodes.find(n.id), 'a reconnect cancels the deletion');
  t.nodes.setOnline(n.id, false);
  await sleep(1_500);
  assert.equal(t.nodes.find(n.id), undefined, 'deleted after the inactivity timeout');
  const kept = register('plain');
  await sleep(1_200);
  assert.ok(t.nodes.find(kept.id), 'non-ephemeral nodes are never reaped');
});
