/** Registration races and map authorization over the real Noise transport of an in-process server. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { inProcessServer } from '../helpers/server.ts';
import { noisePost } from './noise-client.ts';

let server: Awaited<ReturnType<typeof inProcessServer>>;
let port: number;
let serverPublic: Uint8Array;

before(async () => {
  server = await inProcessServer({ derp: { enabled: false, regionId: 999, regionCode: 'x', stunListenAddr: '', mapPath: '' } });
  port = Number(new URL(server.url).port);
  const key = (await (await fetch(`${server.url}/key?v=130`)).json()) as { publicKey: string };
  serverPublic = Buffer.from(key.publicKey.slice('mkey:'.length), 'hex');
});
after(async () => {
  await server.close();
});

const nodeKey = () => `nodekey:${randomBytes(32).toString('hex')}`;

/** Opens a Noise connection with a fresh machine key and posts one JSON request. */
const post = (path: string, body: unknown) => noisePost(port, serverPublic, path, body);

test('50 concurrent registrations with one single-use key make exactly one node', async () => {
  const t = server.tailnet;
  const user = t.users.create({ name: 'race' });
  const { key } = t.preAuthKeys.create({ userId: user.id });
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      post('/machine/register', { Version: 130, NodeKey: nodeKey(), Auth: { AuthKey: key }, Hostinfo: { Hostname: `racer${i}` } }),
    ),
  );
  const winners = results.filter((r) => r.status === 200 && !r.json.Error);
  const losers = results.filter((r) => r.json?.Error);
  assert.equal(winners.length, 1);
  assert.equal(losers.length, 49);
  assert.ok(losers.every((r) => r.json.Error === 'auth key already used'));
  assert.equal(t.nodes.list().filter((n) => n.userId === user.id).length, 1);
});

test('invalid and expired keys get a clear error; nothing is created', async () => {
  const before = server.tailnet.nodes.list().length;
  const bad = await post('/machine/register', { Version: 130, NodeKey: nodeKey(), Auth: { AuthKey: 'tpkey-auth-nope' } });
  assert.deepEqual(bad, { status: 200, json: { Error: 'invalid auth key' } });
  const user = server.tailnet.users.create({ name: 'late' });
  const { key, record } = server.tailnet.preAuthKeys.create({ userId: user.id });
  server.tailnet.preAuthKeys.expire(record.id);
  const expired = await post('/machine/register', { Version: 130, NodeKey: nodeKey(), Auth: { AuthKey: key } });
  assert.equal(expired.json.Error, 'auth key expired');
  assert.equal(server.tailnet.nodes.list().length, before);
});

test('a map request for another machine\'s node key is refused', async () => {
  const victim = server.tailnet.nodes.list()[0]!;
  const res = await post('/machine/map', { Version: 130, NodeKey: victim.nodeKey, Stream: false, OmitPeers: true });
  assert.equal(res.status, 404);
  const malformed = await post('/machine/map', { Version: 130, NodeKey: 'nodekey:zz' });
  assert.equal(malformed.status, 400);
  const garbage = await post('/machine/register', 'not an object');
  assert.equal(garbage.status, 400);
});
