/** Unit tests of the Noise record codec over real loopback TCP: record layout, big-endian nonce, limits, backpressure. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { maxMessageSize, maxPlaintextSize, NoiseConn } from '../../src/control/noise/conn.ts';
import { open, seal } from '../../src/control/noise/primitives.ts';

const k1 = randomBytes(32);
const k2 = randomBytes(32);
let server: Server;
let port: number;
const accepted: Socket[] = [];

before(async () => {
  server = createServer((s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as { port: number }).port;
});
after(() => {
  accepted.forEach((s) => s.destroy());
  server.close();
});

/** A connected TCP pair: `a` is the client end, `b` the accepted end. */
async function pair(): Promise<{ a: Socket; b: Socket }> {
  const n = accepted.length;
  const a = connect(port, '127.0.0.1');
  await once(a, 'connect');
  while (accepted.length === n) await new Promise((r) => setTimeout(r, 5));
  return { a, b: accepted[accepted.length - 1]! };
}

function nonceBE(counter: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(BigInt(counter), 4);
  return n;
}

function record(key: Uint8Array, counter: number, pt: Uint8Array, nonce = nonceBE(counter)): Buffer {
  const ct = seal(key, nonce, pt);
  const hdr = Buffer.from([0x04, 0, 0]);
  hdr.writeUInt16BE(ct.length, 1);
  return Buffer.concat([hdr, ct]);
}

/** Reads until `bytes` bytes arrived (or the stream ended), leaving the stream open and paused. */
function readAll(stream: NoiseConn, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const done = () => {
      stream.off('data', onData);
      stream.pause();
      resolve(Buffer.concat(chunks));
    };
    const onData = (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= bytes) done();
    };
    stream.on('data', onData);
    stream.once('end', done);
    stream.once('error', reject);
  });
}

test('writes are split into records of at most 4096 bytes with big-endian counter nonces and no AD', async () => {
  const { a, b } = await pair();
  const conn = new NoiseConn(a, { txKey: k1, rxKey: k2 });
  const payload = randomBytes(100_000);
  conn.write(payload);
  const wire: Buffer[] = [];
  let total = 0;
  const expectedRecords = Math.ceil(payload.length / maxPlaintextSize);
  const expectedBytes = payload.length + expectedRecords * (3 + 16);
  for await (const c of b) {
    wire.push(c as Buffer);
    total += (c as Buffer).length;
    if (total >= expectedBytes) break;
  }
  const all = Buffer.concat(wire);
  assert.equal(all.length, expectedBytes);
  const plain: Buffer[] = [];
  for (let at = 0, i = 0; at < all.length; i++) {
    assert.equal(all[at], 0x04, 'record type');
    const len = all.readUInt16BE(at + 1);
    assert.ok(3 + len <= maxMessageSize, `record ${i} is ${3 + len} bytes`);
    plain.push(open(k1, nonceBE(i), all.subarray(at + 3, at + 3 + len)));
    at += 3 + len;
  }
  assert.equal(plain.length, expectedRecords);
  assert.equal(plain[0]!.length, maxPlaintextSize);
  assert.deepEqual(Buffer.concat(plain), payload);
  conn.destroy();
});

test('reads reassemble records from single bytes, skip empty records, and take head bytes first', async () => {
  const { a, b } = await pair();
  const msgs = [Buffer.from('hello '), Buffer.alloc(0), Buffer.from('world')];
  const wire = Buffer.concat(msgs.map((m, i) => record(k2, i, m)));
  const head = wire.subarray(0, 10);
  const conn = new NoiseConn(a, { txKey: k1, rxKey: k2, head });
  const rest = wire.subarray(10);
  for (const byte of rest) {
    b.write(Buffer.of(byte));
    await new Promise((r) => setImmediate(r));
  }
  assert.equal((await readAll(conn, 11)).toString(), 'hello world');
  conn.destroy();
});

test('a little-endian nonce (trap T1) fails authentication and destroys the connection', async () => {
  const { a, b } = await pair();
  const conn = new NoiseConn(a, { txKey: k1, rxKey: k2 });
  const le = Buffer.alloc(12);
  le.writeBigUInt64LE(1n, 4);
  b.write(Buffer.concat([record(k2, 0, Buffer.from('ok')), record(k2, 1, Buffer.from('bad'), le)]));
  const [err] = (await once(conn, 'error')) as [Error];
  assert.match(err.message, /authentication failed/);
  await once(a, 'close');
  assert.ok(a.destroyed);
});

test('an oversized record (4097 bytes) destroys the connection before any decryption', async () => {
  const { a, b } = await pair();
  const conn = new NoiseConn(a, { txKey: k1, rxKey: k2 });
  const hdr = Buffer.from([0x04, 0, 0]);
  hdr.writeUInt16BE(maxMessageSize - 3 + 1, 1);
  b.write(hdr);
  const [err] = (await once(conn, 'error')) as [Error];
  assert.match(err.message, /record too large/);
  await once(b, 'close');
});

test('a wrong record type or a connection closed mid-record is an error', async () => {
  {
    const { a, b } = await pair();
    const conn = new NoiseConn(a, { txKey: k1, rxKey: k2 });
    b.write(Buffer.from([0x03, 0, 16]));
    assert.match(((await once(conn, 'error')) as [Error])[0].message, /unexpected message type 3/);
  }
  {
    const { a, b } = await pair();
    const conn = new NoiseConn(a, { txKey: k1, rxKey: k2 });
    b.end(record(k2, 0, Buffer.from('truncated')).subarray(0, 10));
    assert.match(((await once(conn, 'error')) as [Error])[0].message, /closed inside a record/);
  }
});

test('backpressure: write() reports a full buffer while the peer does not read, then drains', async () => {
  const { a, b } = await pair();
  const conn = new NoiseConn(a, { txKey: k1, rxKey: k2 });
  b.pause();
  const chunk = randomBytes(64 * 1024);
  let writes = 0;
  while (conn.write(chunk)) {
    writes++;
    assert.ok(writes < 10_000, 'write() never reported backpressure');
  }
  const peer = new NoiseConn(b, { txKey: k2, rxKey: k1 });
  const drained = once(conn, 'drain');
  const got = await readAll(peer, (writes + 1) * chunk.length);
  await drained;
  assert.equal(got.length, (writes + 1) * chunk.length);
  conn.destroy();
  peer.destroy();
});

test('writePieces: pieces sealed as one run, backpressure and one drain, order kept with queued writes', async () => {
  const { a, b } = await pair();
  const conn = new NoiseConn(a, { txKey: k1, rxKey: k2 });
  b.pause();
  const piece = randomBytes(48 * 1024);
  const sent: Buffer[] = [];
  let calls = 0;
  do {
    sent.push(piece.subarray(0, 7), piece);
    calls++;
    assert.ok(calls < 10_000, 'writePieces never reported backpressure');
  } while (conn.writePieces([piece.subarray(0, 7), piece]));
  // As large as the buffer flushes are sealed into: it must not be the one the socket still holds.
  const more = randomBytes(60 * 1024);
  assert.equal(conn.writePieces([more]), false, 'still full');
  sent.push(more);
  // A write through the Writable while the socket is full queues behind the pieces, and the next pieces behind it.
  conn.write(Buffer.from('queued'));
  conn.writePieces([Buffer.from('after')]);
  sent.push(Buffer.from('queued'), Buffer.from('after'));
  let drains = 0;
  conn.on('drain', () => drains++);
  const peer = new NoiseConn(b, { txKey: k2, rxKey: k1 });
  const expected = Buffer.concat(sent);
  const got = await readAll(peer, expected.length);
  assert.deepEqual(got, expected);
  await new Promise((r) => setImmediate(r));
  assert.ok(drains >= 1 && drains <= 2, `drain emitted ${drains} times`);
  conn.destroy();
  peer.destroy();
});

test('two NoiseConns talk end to end in both directions', async () => {
  const { a, b } = await pair();
  const client = new NoiseConn(a, { txKey: k1, rxKey: k2 });
  const srv = new NoiseConn(b, { txKey: k2, rxKey: k1 });
  const big = randomBytes(200_000);
  client.write(big);
  assert.deepEqual(await readAll(srv, big.length), big);
  srv.end('bye');
  assert.equal((await readAll(client, 3)).toString(), 'bye');
  client.destroy();
});
