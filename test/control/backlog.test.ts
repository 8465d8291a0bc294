/**
 * A client that stops reading its map stream: the server queues what the client does not read only up to a cap
 * and then resets the stream, dropping the backlog, instead of holding it until the client reads (real Noise,
 * HTTP/2 flow control, an in-process server with a small cap).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import { after, before, test } from 'node:test';
import { inProcessServer } from '../helpers/server.ts';
import { dialNoise, h2Request, h2Session } from './noise-client.ts';

const backlogBytes = 64 << 10;
let server: Awaited<ReturnType<typeof inProcessServer>>;

before(async () => {
  server = await inProcessServer({ derp: { enabled: false, regionId: 999, regionCode: 'x', stunListenAddr: '', mapPath: '' } }, { limits: { mapBacklogBytes: backlogBytes } });
});
after(() => server.close());

const key = (prefix: string) => `${prefix}:${randomBytes(32).toString('hex')}`;

test('a client that stops reading is cut off once its backlog passes the cap, and the backlog is dropped', async () => {
  const t = server.tailnet;
  const user = t.users.create({ name: 'slow' });
  const key0 = await (await fetch(`${server.url}/key?v=130`)).json() as { publicKey: string };
  const client = await dialNoise(Number(new URL(server.url).port), Buffer.from(key0.publicKey.slice(5), 'hex'));
  const session = h2Session(client);
  const nodeKey = key('nodekey');
  const reg = await h2Request(session, '/machine/register', JSON.stringify({ Version: 130, NodeKey: nodeKey, Auth: { AuthKey: t.preAuthKeys.create({ userId: user.id }).key }, Hostinfo: { Hostname: 'slow-reader' } }));
  assert.equal(reg.status, 200);
  const stream = session.request({ ':method': 'POST', ':path': '/machine/map', 'content-type': 'application/json' });
  stream.end(JSON.stringify({ Version: 130, NodeKey: nodeKey, DiscoKey: key('discokey'), Stream: true, KeepAlive: true, Compress: 'zstd' }));
  // Never read: HTTP/2 flow control then stops the server at the client's window, and the rest queues there.
  stream.pause();
  const closed = new Promise<number>((res) => stream.on('close', () => res(stream.rstCode)));
  // Peers join (the default policy lets everyone see everyone) until the server gives up on the stream; every
  // flush sends the reader a delta with the new peers' records.
  let joined = 0;
  const deadline = Date.now() + 30_000;
  while (!stream.closed && Date.now() < deadline) {
    for (let i = 0; i < 20; i++, joined++) {
      const services = Array.from({ length: 20 }, (_, k) => ({ Proto: 'tcp', Port: 1000 + k, Description: randomBytes(16).toString('hex') }));
      const n = t.nodes.register({ machineKey: key('mkey'), nodeKey: key('nodekey'), hostname: `peer-${joined}`, hostinfo: { Hostname: `peer-${joined}`, OS: 'linux', Services: services }, userId: user.id, tags: [], ephemeral: false, method: 'authkey' });
      t.nodes.report(n.id, { discoKey: key('discokey'), endpoints: [{ addr: `192.0.2.1:${1000 + joined}`, type: 1 }] });
    }
    await new Promise((r) => setTimeout(r, 30));
  }
  const rstCode = await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open'), 5_000))]);
  assert.equal(rstCode, http2.constants.NGHTTP2_CANCEL, 'the stream was reset, its queue dropped, not ended after a flush');
  assert.equal(server.stats().mapStreams, 0, 'the server no longer holds the stream');
  assert.ok(joined > 20, `the cut-off came after some backlog, not at once (${joined} peers joined)`);
  session.destroy();
});
