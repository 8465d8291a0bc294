/**
 * Keys are canonical at the boundary: a second machine holding a valid pre-auth key cannot register the
 * upper-case spelling of an existing node's key and appear as its clone, nor report a non-canonical disco key.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { noiseServer } from './noise-server.ts';

let server: Awaited<ReturnType<typeof noiseServer>>['server'];
let post: Awaited<ReturnType<typeof noiseServer>>['post'];

before(async () => {
  ({ server, post } = await noiseServer());
});
after(async () => {
  await server.close();
});

test('an upper-case spelling of an existing node key is refused; no clone appears', async () => {
  const t = server.tailnet;
  const user = t.users.create({ name: 'canon' });
  const { key } = t.preAuthKeys.create({ userId: user.id, reusable: true });
  const hex = randomBytes(32).toString('hex').replace(/^./, 'a');
  const first = await post('/machine/register', { Version: 130, NodeKey: `nodekey:${hex}`, Auth: { AuthKey: key }, Hostinfo: { Hostname: 'victim' } });
  assert.equal(first.status, 200, first.text);
  const clone = await post('/machine/register', { Version: 130, NodeKey: `nodekey:${hex.toUpperCase()}`, Auth: { AuthKey: key }, Hostinfo: { Hostname: 'clone' } });
  assert.equal(clone.status, 400);
  assert.match(clone.text, /64 lowercase hex/);
  const mixed = await post('/machine/register', { Version: 130, NodeKey: `nodekey:${hex}`, OldNodeKey: `nodekey:${hex.toUpperCase()}`, Auth: { AuthKey: key } });
  assert.equal(mixed.status, 400);
  const nodes = t.nodes.list().filter((n) => n.userId === user.id);
  assert.deepEqual(nodes.map((n) => n.hostname), ['victim']);
  assert.equal(t.nodes.list().filter((n) => n.nodeKey.toLowerCase() === `nodekey:${hex}`).length, 1);
});

test('a map request with a non-canonical node or disco key is refused', async () => {
  const hex = randomBytes(32).toString('hex');
  const upperNode = await post('/machine/map', { Version: 130, NodeKey: `nodekey:${hex.toUpperCase()}`, Stream: false });
  assert.equal(upperNode.status, 400);
  const upperDisco = await post('/machine/map', { Version: 130, NodeKey: `nodekey:${hex}`, DiscoKey: `discokey:${'AB'.repeat(32)}`, Stream: false });
  assert.equal(upperDisco.status, 400);
  assert.match(upperDisco.text, /DiscoKey/);
});
