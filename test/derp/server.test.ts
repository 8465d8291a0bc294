/** The DERP server against hand-rolled clients: relaying, duplicates, peer-gone, and bad input that must only cost its own connection. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { createDerpServer, type DerpServerOptions } from '../../src/derp/index.ts';
import { FrameType, MAX_PACKET_SIZE, encodeFrame } from '../../src/derp/wire.ts';
import { admittedClient, newKey, rawClient, type RawClient } from './raw-client.ts';

type Opts = Partial<DerpServerOptions>;

async function start(opts: Opts = {}) {
  const derp = createDerpServer({ isAllowed: () => true, ...opts });
  // The control server's own handler, which attach() must keep serving everything else.
  const http: Server = createServer((_req, res) => res.end('fallback'));
  derp.attach(http);
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as { port: number }).port;
  return {
    derp,
    port,
    async stop() {
      derp.close();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

function fetchStatus(port: number, method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const isKeepAlive = (f: { type: number }) => f.type === FrameType.KeepAlive;
const send = (c: RawClient, to: Uint8Array, data: Buffer) => c.send(encodeFrame(FrameType.SendPacket, to, data));

/** Proves the server still relays between two fresh clients. */
async function assertStillServing(port: number): Promise<void> {
  const a = await admittedClient(port);
  const b = await admittedClient(port);
  send(a, b.publicKey, Buffer.from('still here'));
  const f = await b.nextFrame(isKeepAlive);
  assert.equal(f?.type, FrameType.RecvPacket);
  assert.deepEqual(Buffer.from(f!.payload.subarray(0, 32)), Buffer.from(a.publicKey));
  assert.equal(f!.payload.subarray(32).toString(), 'still here');
  a.socket.destroy();
  b.socket.destroy();
}

test('probe endpoints, plain GET /derp, and pass-through of other requests', async () => {
  const s = await start();
  try {
    assert.equal((await fetchStatus(s.port, 'GET', '/derp/probe')).status, 200);
    assert.equal((await fetchStatus(s.port, 'HEAD', '/derp/latency-check')).status, 200);
    assert.equal((await fetchStatus(s.port, 'POST', '/derp/probe')).status, 405);
    assert.equal((await fetchStatus(s.port, 'GET', '/derp')).status, 426);
    assert.deepEqual(await fetchStatus(s.port, 'GET', '/key?v=113'), { status: 200, body: 'fallback' });
  } finally {
    await s.stop();
  }
});

test('handshake: 101 with the public key, ServerKey with magic, sealed ServerInfo', async () => {
  const s = await start();
  try {
    const c = await admittedClient(s.port);
    assert.equal('nodekey:' + Buffer.from(c.serverKey).toString('hex'), s.derp.publicKey);
    assert.equal(s.derp.stats().connections, 1);
    c.socket.destroy();
  } finally {
    await s.stop();
  }
});

test('relays packets with the source key, answers pings, counts home clients', async () => {
  const s = await start();
  try {
    const a = await admittedClient(s.port);
    const b = await admittedClient(s.port);
    a.send(encodeFrame(FrameType.NotePreferred, Buffer.of(1)));
    const big = Buffer.alloc(MAX_PACKET_SIZE, 0x5a);
    send(a, b.publicKey, big);
    const f = await b.nextFrame(isKeepAlive);
    assert.equal(f?.type, FrameType.RecvPacket);
    assert.deepEqual(Buffer.from(f!.payload.subarray(0, 32)), Buffer.from(a.publicKey));
    assert.ok(f!.payload.subarray(32).equals(big));
    a.send(encodeFrame(FrameType.Ping, Buffer.from('pingdata')));
    const pong = await a.nextFrame(isKeepAlive);
    assert.equal(pong?.type, FrameType.Pong);
    assert.equal(pong!.payload.toString(), 'pingdata');
    const st = s.derp.stats();
    assert.equal(st.packetsRelayed, 1);
    assert.equal(st.bytesRelayed, MAX_PACKET_SIZE);
    assert.equal(st.home, 1);
    assert.equal(st.clients, 2);
  } finally {
    await s.stop();
  }
});

test('peer gone: disconnected to those it sent to; not-here only for disco packets', async () => {
  const s = await start();
  try {
    const a = await admittedClient(s.port);
    const b = await admittedClient(s.port);
    const nobody = newKey().publicKey;
    send(a, nobody, Buffer.from('plain packet'));
    const disco = Buffer.concat([Buffer.from('TS💬'), Buffer.alloc(32 + 24 + 16)]);
    send(a, nobody, disco);
    const nh = await a.nextFrame(isKeepAlive);
    assert.equal(nh?.type, FrameType.PeerGone);
    assert.deepEqual([...nh!.payload], [...nobody, 1]); // exactly one reply, for the disco packet
    send(a, b.publicKey, Buffer.from('x'));
    assert.equal((await b.nextFrame(isKeepAlive))?.type, FrameType.RecvPacket);
    a.socket.destroy();
    const gone = await b.nextFrame(isKeepAlive);
    assert.equal(gone?.type, FrameType.PeerGone);
    assert.deepEqual([...gone!.payload], [...a.publicKey, 0]);
  } finally {
    await s.stop();
  }
});

test('same key twice: the newer connection gets the packets; the older takes over when it leaves', async () => {
  const s = await start();
  try {
    const key = newKey();
    const old = await admittedClient(s.port, key);
    const newer = await admittedClient(s.port, key);
    const b = await admittedClient(s.port);
    send(b, key.publicKey, Buffer.from('one'));
    assert.equal((await newer.nextFrame(isKeepAlive))?.payload.subarray(32).toString(), 'one');
    newer.socket.destroy();
    await newer.closed;
    await new Promise((r) => setTimeout(r, 50));
    send(b, key.publicKey, Buffer.from('two'));
    assert.equal((await old.nextFrame(isKeepAlive))?.payload.subarray(32).toString(), 'two');
    assert.equal(s.derp.stats().clients, 2);
  } finally {
    await s.stop();
  }
});

test('isAllowed: denied keys are closed after client info; async answers work; recheck and disconnect', async () => {
  const allowed = new Set<string>();
  const s = await start({ isAllowed: async (k) => allowed.has(k) });
  try {
    const denied = await rawClient(s.port);
    denied.sendClientInfo();
    assert.equal(await denied.nextFrame(), null, 'closed without ServerInfo');
    assert.equal(s.derp.stats().rejected, 1);

    const key = newKey();
    allowed.add(key.text);
    const c = await rawClient(s.port, key);
    // Frames sent before admission completes are handled after it.
    c.sendClientInfo();
    c.send(encodeFrame(FrameType.Ping, Buffer.from('early!!!')));
    assert.equal((await c.nextFrame())?.type, FrameType.ServerInfo);
    assert.equal((await c.nextFrame(isKeepAlive))?.payload.toString(), 'early!!!');

    allowed.delete(key.text);
    assert.equal(await s.derp.recheckAccess(), 1);
    await c.closed;
    const c2 = await admittedClient(s.port, newKey()).catch(() => null);
    assert.equal(c2, null, 'still denied');
    allowed.add(key.text);
    const c3 = await admittedClient(s.port, key);
    assert.equal(s.derp.disconnect(key.text), 1);
    await c3.closed;
  } finally {
    await s.stop();
  }
});

const badInputs: Array<[string, (c: RawClient) => void]> = [
  ['garbage instead of frames', (c) => c.send(Buffer.from('\x16\x03\x01 this is not DERP at all, not even close......'))],
  ['a frame before client info', (c) => c.send(encodeFrame(FrameType.SendPacket, Buffer.alloc(40)))],
  ['an oversized client info header', (c) => c.send(Buffer.from([FrameType.ClientInfo, 0x7f, 0xff, 0xff, 0xff]))],
  ['a short client info', (c) => c.send(encodeFrame(FrameType.ClientInfo, Buffer.alloc(60)))],
  ['client info sealed to the wrong key', (c) => c.sendClientInfo(undefined, newKey().publicKey)],
  ['client info that is not JSON', (c) => c.sendClientInfo(Buffer.from('{"version":2'))],
  ['client info that is a JSON string', (c) => c.sendClientInfo(Buffer.from('"nope"'))],
];

for (const [name, act] of badInputs) {
  test(`closes on ${name} and keeps serving others`, async () => {
    const s = await start();
    try {
      const c = await rawClient(s.port);
      act(c);
      assert.equal(await c.nextFrame(), null);
      assert.equal(s.derp.stats().protocolErrors, 1);
      await assertStillServing(s.port);
    } finally {
      await s.stop();
    }
  });
}

test('after admission: oversized frame, short ping and mesh frames close only that connection', async () => {
  const s = await start();
  try {
    const cases = [
      Buffer.from([FrameType.SendPacket, 0x00, 0x01, 0x00, 0x21]), // 64 KiB + 33: one byte over
      encodeFrame(FrameType.Ping, Buffer.from('1234')),
      encodeFrame(FrameType.WatchConns),
      encodeFrame(FrameType.SendPacket, Buffer.alloc(31)),
    ];
    for (const bytes of cases) {
      const c = await admittedClient(s.port);
      c.send(bytes);
      assert.equal(await c.nextFrame(isKeepAlive), null);
    }
    assert.equal(s.derp.stats().protocolErrors, cases.length);
    await assertStillServing(s.port);
  } finally {
    await s.stop();
  }
});

test('handshake timeout, keep-alives, and unknown frames', async () => {
  const s = await start({ handshakeTimeoutMs: 100, keepAliveMs: 60 });
  try {
    const silent = await rawClient(s.port);
    assert.equal(await silent.nextFrame(), null);
    const c = await admittedClient(s.port);
    c.send(encodeFrame(0x7e, Buffer.from('from the future')));
    assert.equal((await c.nextFrame())?.type, FrameType.KeepAlive);
    assert.equal((await c.nextFrame())?.type, FrameType.KeepAlive);
    c.socket.destroy();
  } finally {
    await s.stop();
  }
});

test('wrong Upgrade is refused, and close() drops clients and detaches', async () => {
  const s = await start();
  const sock = connect(s.port, '127.0.0.1');
  sock.write('GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: derp2\r\nConnection: Upgrade\r\n\r\n');
  const reply = await new Promise<string>((r) => {
    let b = '';
    sock.on('data', (c: Buffer) => (b += c));
    sock.on('close', () => r(b));
  });
  assert.match(reply, /^HTTP\/1\.1 426/);
  const ws = connect(s.port, '127.0.0.1');
  ws.write('GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: derp\r\n\r\n');
  assert.match(await new Promise<string>((r) => ws.once('data', (c: Buffer) => r(c.toString()))), /^HTTP\/1\.1 501/);
  ws.destroy();
  const c = await admittedClient(s.port);
  s.derp.close();
  await c.closed;
  assert.equal(s.derp.stats().connections, 0);
  assert.equal((await fetchStatus(s.port, 'GET', '/derp/probe')).body, 'fallback');
  await s.stop();
});

test('upgraded connections outlive the HTTP server timeouts (trap T42)', async () => {
  const derp = createDerpServer({ isAllowed: () => true });
  const http = createServer({ requestTimeout: 300, headersTimeout: 200, keepAliveTimeout: 100, connectionsCheckingInterval: 50 });
  http.timeout = 200;
  derp.attach(http);
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  try {
    const c = await admittedClient((http.address() as { port: number }).port);
    await new Promise((r) => setTimeout(r, 800));
    c.send(encodeFrame(FrameType.Ping, Buffer.from('abcdefgh')));
    assert.equal((await c.nextFrame(isKeepAlive))?.type, FrameType.Pong);
  } finally {
    derp.close();
    await new Promise<void>((r) => http.close(() => r()));
  }
});
