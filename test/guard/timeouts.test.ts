/**
 * Connections that say nothing, stall or crawl are closed: idle and slow HTTP connections, a Noise connection
 * with no request, a Noise record stalled midway, a request body over Noise that never ends; a map long-poll
 * is not idle. One source cannot hold more than its share of connections.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { dialNoise, h2Request, h2Session } from '../control/noise-client.ts';
import { noiseServer } from './noise-server.ts';

// The idle deadline is longer than the request deadline, as in production (120 s and 30 s): with the two equal,
// a stalled body raced the socket's idle timer, which closes without a 408.
const limits = { headersMs: 500, requestMs: 1_000, idleMs: 1_500, recordMs: 500, connectionsPerSource: 6 };
let server: Awaited<ReturnType<typeof noiseServer>>['server'];
let port: number;
let serverPublic: Uint8Array;

before(async () => {
  ({ server, port, serverPublic } = await noiseServer({ limits }));
});
after(async () => {
  await server.close();
});

/** Waits for the connection; reads (and drops) what comes, so the server's close is seen. */
const opened = (socket: Socket) => new Promise<void>((r) => socket.once('connect', () => r())).then(() => void socket.resume());
/** Milliseconds until the socket closes (rejects after `max`). */
function closesWithin(socket: Socket | { once(e: 'close', f: () => void): unknown }, max: number): Promise<number> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${max} ms`)), max);
    socket.once('close', () => (clearTimeout(timer), resolve(Date.now() - start)));
  });
}

test('HTTP: a silent connection, dripped headers and a stalled body are all closed', async () => {
  const silent = connect(port, '127.0.0.1');
  silent.on('error', () => {});
  await opened(silent);
  await closesWithin(silent, 3_000);

  const drip = connect(port, '127.0.0.1');
  drip.on('error', () => {});
  await opened(drip);
  drip.write('GET /health HTTP/1.1\r\nHost: x\r\n');
  const dripper = setInterval(() => drip.writable && drip.write('X-A: b\r\n'), 100);
  try {
    await closesWithin(drip, 3_000);
  } finally {
    clearInterval(dripper);
  }

  const body = connect(port, '127.0.0.1');
  body.on('error', () => {});
  let reply = '';
  body.on('data', (d) => (reply += d));
  await opened(body);
  body.write(`POST /api/v1/user HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.apiKey}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":`);
  await closesWithin(body, 4_000);
  assert.match(reply, /^HTTP\/1\.1 408 /);
});

test('Noise: no request after the handshake, and a record stalled midway, close the connection', async () => {
  const idle = await dialNoise(port, serverPublic);
  idle.conn.on('error', () => {});
  await closesWithin(idle.conn, 3_000);

  const stalled = await dialNoise(port, serverPublic);
  stalled.conn.on('error', () => {});
  // A record header announcing 100 bytes, then 10 of them, then nothing. The idle deadline is longer.
  stalled.reply.socket.write(Buffer.concat([Buffer.from([0x04, 0x00, 0x64]), Buffer.alloc(10)]));
  const ms = await closesWithin(stalled.conn, 3_000);
  assert.ok(ms < limits.idleMs, `closed by the record deadline, not the idle one (${ms} ms)`);
});

test('Noise: a request body that never ends is answered 408; a map long-poll outlives the idle deadline', { timeout: 20_000 }, async () => {
  const client = await dialNoise(port, serverPublic);
  const session = h2Session(client);
  try {
    const stream = session.request({ ':method': 'POST', ':path': '/machine/register', 'content-type': 'application/json' });
    stream.write('{"NodeKey":');
    const status = await new Promise<number | string>((resolve) => {
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
      stream.on('close', () => resolve('closed'));
    });
    assert.equal(status, 408);

    const user = server.tailnet.users.create({ name: 'poller' });
    const { key } = server.tailnet.preAuthKeys.create({ userId: user.id });
    const nodeKey = `nodekey:${randomBytes(32).toString('hex')}`;
    const reg = await h2Request(session, '/machine/register', JSON.stringify({ Version: 130, NodeKey: nodeKey, Auth: { AuthKey: key } }));
    assert.equal(reg.status, 200, reg.body.toString());
    const poll = session.request({ ':method': 'POST', ':path': '/machine/map', 'content-type': 'application/json' });
    poll.end(JSON.stringify({ Version: 130, NodeKey: nodeKey, DiscoKey: `discokey:${randomBytes(32).toString('hex')}`, Stream: true }));
    poll.on('data', () => {});
    poll.on('error', () => {});
    await new Promise((r) => setTimeout(r, limits.idleMs * 2.5));
    assert.equal(poll.closed, false, 'the map stream is still open');
    assert.equal(client.conn.destroyed, false, 'the connection is still open');
    poll.close(http2.constants.NGHTTP2_CANCEL);
  } finally {
    session.destroy();
    client.conn.destroy();
  }
});

test('one source cannot hold more than connectionsPerSource connections', async () => {
  const held: Socket[] = [];
  try {
    for (let i = 0; i < limits.connectionsPerSource; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      held.push(s);
      await opened(s);
    }
    const extra = connect(port, '127.0.0.1');
    extra.on('error', () => {});
    const ms = await closesWithin(extra, 1_000);
    assert.ok(ms < 300, `the extra connection was refused at once (${ms} ms)`);
    assert.ok(held.every((s) => !s.destroyed), 'the first ones are still open');
  } finally {
    for (const s of held) s.destroy();
  }
  await new Promise((r) => setTimeout(r, 100));
  const res = await fetch(`${server.url}/health`, { headers: { connection: 'close' } });
  assert.equal(res.status, 200);
});
