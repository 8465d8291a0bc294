/**
 * Unauthenticated interactive logins cost bounded memory: each keeps only a few short Hostinfo fields, one
 * source may start only so many a minute, and only so many may wait at once. Bodies nested absurdly deep
 * are a 400 at the door, not a 500 later.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { api } from '../helpers/server.ts';
import { noiseServer } from './noise-server.ts';

const limits = { pendingLogins: 4, pendingLoginsPerSourcePerMinute: 6 };
let server: Awaited<ReturnType<typeof noiseServer>>['server'];
let post: Awaited<ReturnType<typeof noiseServer>>['post'];

before(async () => {
  ({ server, post } = await noiseServer({ limits }));
});
after(async () => {
  await server.close();
});

const nodeKey = () => `nodekey:${randomBytes(32).toString('hex')}`;
const deep = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);

test('a Hostinfo nested 20,000 deep is a 400 on register and map, and never becomes a pending login', async () => {
  const reg = await post('/machine/register', `{"Version":130,"NodeKey":"${nodeKey()}","Hostinfo":{"Hostname":"deep","Services":[${deep(20_000)}]}}`);
  assert.equal(reg.status, 400);
  assert.match(reg.text, /nests deeper than 64 levels/);
  const map = await post('/machine/map', `{"Version":130,"NodeKey":"${nodeKey()}","Hostinfo":${deep(20_000)}}`);
  assert.equal(map.status, 400);
  const pending = await api(server, 'GET', '/api/v1/auth/pending');
  assert.deepEqual(pending.json.pending, []);
});

test('pending logins keep a small Hostinfo and are capped in all and per source', async () => {
  const big = 'x'.repeat(900_000);
  const hostinfo = { Hostname: 'big', OS: 'linux', Services: [{ Proto: 'tcp', Port: 22, Description: big }], NetInfo: { Note: big.slice(0, 1000) } };
  const first = await post('/machine/register', JSON.stringify({ Version: 130, NodeKey: nodeKey(), Hostinfo: hostinfo }));
  assert.equal(first.status, 200, first.text);
  const authId = (JSON.parse(first.text) as { AuthURL: string }).AuthURL.split('/').pop()!;
  for (let i = 0; i < 3; i++) {
    const r = await post('/machine/register', JSON.stringify({ Version: 130, NodeKey: nodeKey(), Hostinfo: { Hostname: `n${i}` } }));
    assert.match(JSON.parse(r.text).AuthURL, /\/register\//);
  }
  // Four are waiting: the fifth is told to come back later.
  const full = await post('/machine/register', JSON.stringify({ Version: 130, NodeKey: nodeKey() }));
  assert.equal(full.status, 200);
  assert.match(JSON.parse(full.text).Error, /4 logins are already waiting for an admin/);
  await post('/machine/register', JSON.stringify({ Version: 130, NodeKey: nodeKey() }));
  // Six starts from one source in a minute: the seventh is refused before it costs anything.
  const limited = await post('/machine/register', JSON.stringify({ Version: 130, NodeKey: nodeKey() }));
  assert.equal(limited.status, 429);
  assert.match(limited.text, /too many interactive logins from 127\.0\.0\.1/);

  // What the first login kept is what its node gets on approval: the name and OS, not the megabyte.
  const user = server.tailnet.users.create({ name: 'approver' });
  const approved = await api(server, 'POST', '/api/v1/auth/register', { user: user.name, authId });
  assert.equal(approved.status, 200, JSON.stringify(approved.json));
  const node = server.tailnet.nodes.get(Number(approved.json.node.id));
  assert.deepEqual(node.hostinfo, { Hostname: 'big', OS: 'linux' });
});
