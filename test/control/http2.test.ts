/**
 * The control server's own HTTP/2 and HPACK against RFC 7541's examples and a second implementation: node's
 * http2 client (nghttp2) over plain TCP. Real Go clients (noiseprobe, tailscaled) are in noise.test.ts and e2e.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { Http2Connection } from '../../src/control/http2/connection.ts';
import { BodyError, type Http2Request, type Http2Response } from '../../src/control/http2/stream.ts';
import { clientPreface } from '../../src/control/http2/frames.ts';
import { encodeResponseHeaders, HpackDecoder, HpackError } from '../../src/control/http2/hpack.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('HPACK: RFC 7541 C.3 and C.4 request sequences decode, dynamic table and Huffman included', () => {
  const cases = [
    // C.3: literals, no Huffman.
    ['828684410f7777772e6578616d706c652e636f6d', '828684be58086e6f2d6361636865', '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565'],
    // C.4: the same requests, Huffman-coded.
    ['828684418cf1e3c2e5f23a6ba0ab90f4ff', '828684be5886a8eb10649cbf', '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf'],
  ];
  for (const blocks of cases) {
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(hex(blocks[0]!)), [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']]);
    assert.deepEqual(decoder.decode(hex(blocks[1]!)), [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']]);
    assert.deepEqual(decoder.decode(hex(blocks[2]!)), [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']]);
  }
});

test('HPACK: responses encode without state; bad blocks are a clear HpackError', () => {
  const block = encodeResponseHeaders(408, { 'content-type': 'application/json', 'x-long': 'v'.repeat(300) });
  assert.deepEqual(new HpackDecoder().decode(block), [[':status', '408'], ['content-type', 'application/json'], ['x-long', 'v'.repeat(300)]]);
  assert.deepEqual(new HpackDecoder().decode(encodeResponseHeaders(200)), [[':status', '200']]);
  for (const [bad, why] of [
    ['80', /index 0/],
    ['be', /past the dynamic table/],
    ['4188', /truncated|past the header block/],
    ['418cf1e3c2e5f23a6ba0ab90f4fe', /padding/], // C.4.1's authority with a 0 in the padding
    ['3fe21f', /table size/], // an update to 4097, above the announced 4096
  ] as const) {
    assert.throws(() => new HpackDecoder().decode(hex(bad)), (err: Error) => err instanceof HpackError && why.test(err.message), bad);
  }
});

/** A server of Http2Connections on plain TCP, its handler replaced per test. */
let handler: (req: Http2Request, res: Http2Response) => void = () => {};
let port: number;
const connections: Http2Connection[] = [];
const problems: string[] = [];
const server = net.createServer((socket) => {
  const onProblem = (message: string) => problems.push(message);
  connections.push(new Http2Connection(socket, { maxBodyBytes: 300_000, bodyMs: 300, onProblem, onRequest: (req, res) => handler(req, res) }));
});

before(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as net.AddressInfo).port;
});
after(() => server.close());

function connect(settings: http2.Settings = {}): http2.ClientHttp2Session {
  return http2.connect(`http://127.0.0.1:${port}`, { settings });
}

function request(session: http2.ClientHttp2Session, path: string, body?: Buffer | string): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': body === undefined ? 'GET' : 'POST', ':path': path });
    const chunks: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (headers = h));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

test('requests with and without bodies; a 300 KB response through a 1,000-byte client window arrives intact', async () => {
  const big = Buffer.alloc(300_000, 'abcdefghij');
  handler = (req, res) => {
    void req.body().then((body) => {
      if (req.url === '/big') return res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(big);
      res.writeHead(201, { 'x-method': req.method, 'x-path': req.url }).end(`echo:${body.toString()}`);
    });
  };
  const session = connect({ initialWindowSize: 1000 });
  const get = await request(session, '/a?b=c');
  assert.equal(get.status, 201);
  assert.equal(get.headers['x-path'], '/a?b=c');
  assert.equal(get.body.toString(), 'echo:');
  const post = await request(session, '/p', 'hello');
  assert.deepEqual([post.status, post.headers['x-method'], post.body.toString()], [201, 'POST', 'echo:hello']);
  // Four times the 64 KiB windows the server announces: the client only gets through as credit comes back.
  const long = 'y'.repeat(250_000);
  assert.equal((await request(session, '/p', long)).body.toString(), `echo:${long}`);
  const [r1, r2] = await Promise.all([request(session, '/big'), request(session, '/big')]);
  assert.ok(r1.body.equals(big) && r2.body.equals(big));
  const rtt = await new Promise<number>((resolve, reject) => session.ping((err, ms) => (err ? reject(err) : resolve(ms))));
  assert.ok(rtt >= 0);
  session.close();
});

test('a body over the limit or too slow fails body() with its status; the client is told to stop sending', async () => {
  const failures: unknown[] = [];
  handler = (req, res) => {
    req.body().then(
      () => res.end('ok'),
      (err) => {
        failures.push(err);
        res.writeHead((err as BodyError).status).end();
      },
    );
  };
  const session = connect();
  const large = await request(session, '/x', 'x'.repeat(400_000));
  assert.equal(large.status, 413);
  const slow = await new Promise<number>((resolve) => {
    const req = session.request({ ':method': 'POST', ':path': '/slow' });
    req.write('{'); // and never ends
    req.on('response', (h) => resolve(Number(h[':status'])));
  });
  assert.equal(slow, 408);
  assert.deepEqual(failures.map((e) => [(e as BodyError).status, e instanceof BodyError]), [[413, true], [408, true]]);
  session.close();
});

test('a stream the client resets closes on the server unanswered; close() sends GOAWAY and lets open streams finish', async () => {
  let streams: Http2Response[] = [];
  handler = (_req, res) => {
    streams.push(res);
    res.writeHead(200).write('first');
  };
  const session = connect();
  const req = session.request({ ':method': 'GET', ':path': '/stream' });
  await once(req, 'data');
  const closed = new Promise<void>((resolve) => streams[0]!.onClose(resolve));
  req.close(http2.constants.NGHTTP2_CANCEL);
  await closed;
  assert.equal(streams[0]!.closed, true);
  // Closed unanswered: a long poll waiting on it is aborted (control/service.ts).
  assert.equal(streams[0]!.answered, false);

  streams = [];
  const open = session.request({ ':method': 'GET', ':path': '/stream' });
  await once(open, 'data');
  const conn = connections.at(-1)!;
  const goaway = once(session, 'goaway');
  conn.close();
  await goaway;
  const rest: Buffer[] = [];
  open.on('data', (c: Buffer) => rest.push(c));
  streams[0]!.end('last');
  assert.equal(streams[0]!.answered, true);
  await once(open, 'end');
  assert.equal(Buffer.concat(rest).toString(), 'last');
  await once(session, 'close');
});

/** HEADERS for `GET /` (static :method GET, :path /) on stream `id`, then its RST_STREAM (CANCEL). */
function openAndReset(id: number): Buffer {
  const stream = id.toString(16).padStart(8, '0');
  return hex(`000002 01 04 ${stream} 8284 000004 03 00 ${stream} 00000008`);
}

test('protocol errors end only that connection, with a GOAWAY that says why', async () => {
  handler = () => {};
  const cases: [string, Buffer][] = [
    ['too many stream resets', Buffer.concat([clientPreface, ...Array.from({ length: 101 }, (_, i) => openAndReset(2 * i + 1))])],
    ['no client preface', Buffer.from('GET / HTTP/1.1\r\n\r\n'.padEnd(24, ' '))],
    ['frame on idle stream', Buffer.concat([clientPreface, hex('000000 04 00 00000000'), hex('000004 08 00 00000007 00000001')])],
    ['even', Buffer.concat([clientPreface, hex('000001 01 05 00000002 82')])],
    ['hpack', Buffer.concat([clientPreface, hex('000001 01 05 00000001 80')])],
    ['PUSH_PROMISE', Buffer.concat([clientPreface, hex('000004 05 04 00000001 00000002')])],
  ];
  for (const [why, bytes] of cases) {
    const socket = net.connect(port, '127.0.0.1');
    socket.end(bytes);
    const received: Buffer[] = [];
    socket.on('data', (c: Buffer) => received.push(c));
    await once(socket, 'close');
    const all = Buffer.concat(received);
    const at = all.indexOf(hex('07 00 00000000'), 3) - 3; // a GOAWAY frame header after its 3-byte length
    assert.ok(at >= 0, `${why}: no GOAWAY in ${all.toString('hex')}`);
    const length = all.readUIntBE(at, 3);
    assert.match(all.subarray(at + 17, at + 9 + length).toString(), new RegExp(why, 'i'));
  }
  const session = connect(); // the server still serves others
  handler = (_req, res) => res.end('alive');
  assert.equal((await request(session, '/')).body.toString(), 'alive');
  session.close();
});

test('a client that floods PINGs without reading is closed once 64 KiB of answers wait on it', async () => {
  const ping = hex('000008 06 00 00000000 0102030405060708');
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.pause(); // never reads: the server's answers pile up once the kernel's buffers are full
  socket.write(clientPreface);
  const flood = Buffer.concat(Array.from<Buffer>({ length: 20_000 }).fill(ping));
  const until = Date.now() + 20_000;
  while (!problems.includes('http2: client asks but does not read') && Date.now() < until) {
    if (!socket.write(flood)) await Promise.race([once(socket, 'drain'), new Promise((r) => setTimeout(r, 100))]);
  }
  socket.destroy();
  assert.ok(problems.includes('http2: client asks but does not read'), problems.join('; '));
});
