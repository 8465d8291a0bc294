/**
 * No input on any listener ends the process: a corpus of malformed request lines, headers and upgrades on the
 * HTTP listener (control, DERP, admin API), malformed requests inside a Noise connection, and garbage datagrams
 * on STUN; after each batch the same server process still answers /health.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { freePort } from '../harness/tailscaled.ts';
import { spawnServer, type ChildServer } from '../helpers/server.ts';
import { dialNoise, h2Request, h2Session } from '../control/noise-client.ts';

let server: ChildServer;
let port: number;
let stunPort: number;

before(async () => {
  stunPort = await freePort();
  server = await spawnServer({ env: { TAILPLANE_DERP_STUN_LISTEN_ADDR: `127.0.0.1:${stunPort}` } });
  port = Number(new URL(server.url).port);
});
after(async () => {
  await server.stop();
});

/** Sends raw bytes, returns the reply's head (or whatever came back before the server closed or 2 s passed). */
function raw(bytes: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    let reply = '';
    const done = () => (clearTimeout(timer), socket.destroy(), resolve(reply));
    const timer = setTimeout(done, 2_000);
    socket.on('data', (d) => {
      reply += d.toString('latin1');
      if (reply.includes('\r\n\r\n')) setTimeout(done, 20);
    });
    socket.on('close', done);
    socket.on('error', done);
  });
}

async function assertServing(after: string): Promise<void> {
  assert.equal(server.process.exitCode, null, `server exited after ${after}:\n${server.log().slice(-2000)}`);
  const res = await fetch(`${server.url}/health`);
  assert.equal(res.status, 200, `after ${after}`);
  assert.equal(((await res.json()) as { status: string }).status, 'ok');
}

const badTargets = ['//[', 'http://[', '//a:b@', 'http://a:b@', '//[::1', 'http://[zz]/x', '//%', '/%zz', '*', '/\u00ff', '/key?v=%ff'];
const paths = ['/ts2021', '/derp', '/key', '/api/v1/user', '/health', '/register/x', '/derp/probe'];

test('malformed request lines and targets are answered 400, never crash the server', async () => {
  for (const target of badTargets) {
    for (const upgrade of ['', 'Upgrade: tailscale-control-protocol\r\nConnection: upgrade\r\n', 'Upgrade: DERP\r\nConnection: upgrade\r\n']) {
      const reply = await raw(`GET ${target} HTTP/1.1\r\nHost: x\r\n${upgrade}\r\n`);
      assert.match(reply, /^HTTP\/1\.1 [45]\d\d /, `GET ${target} ${upgrade}`);
    }
  }
  // The targets the review found: answered 400, not just survived.
  for (const target of ['//[', 'http://[', '//a:b@']) assert.match(await raw(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`), /^HTTP\/1\.1 400 /);
  await assertServing('malformed targets');
});

test('malformed headers, framing and handshakes on every path never crash the server', async () => {
  const heads = [
    'Host: [\r\n',
    'Content-Length: -1\r\n',
    'Content-Length: 5\r\nContent-Length: 6\r\n',
    'Transfer-Encoding: chunked\r\n\r\nzz\r\n',
    'No colon here\r\n',
    'Upgrade: tailscale-control-protocol\r\nConnection: upgrade\r\nX-Tailscale-Handshake: !!!!\r\n',
    'Upgrade: tailscale-control-protocol\r\nConnection: upgrade\r\nX-Tailscale-Handshake: AAAA\r\n',
    `Upgrade: tailscale-control-protocol\r\nConnection: upgrade\r\nX-Tailscale-Handshake: ${'A'.repeat(136)}\r\n`,
    'Upgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Protocol: derp\r\n',
    'Upgrade: \u0000\r\nConnection: upgrade\r\n',
    'Authorization: Bearer \u00ff\u00fe\r\n',
    'Content-Type: application/json\r\nContent-Length: 3\r\n\r\n{{{',
    `X-Big: ${'a'.repeat(100_000)}\r\n`,
  ];
  for (const path of paths) {
    for (const method of ['GET', 'POST', 'BREW']) {
      for (const head of heads) await raw(`${method} ${path} HTTP/1.1\r\nHost: x\r\n${head}\r\n`);
    }
  }
  for (const junk of ['\u0000\u0001\u0002\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n', 'GET\r\n\r\n', `GET /${'a'.repeat(70_000)} HTTP/1.1\r\n\r\n`]) await raw(junk);
  await raw(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\u0000\u0000\u0000\u0004\u0000', 'latin1'));
  await assertServing('malformed headers');
});

test('malformed requests inside a Noise connection get an HTTP error, never crash the server', async () => {
  const key = (await (await fetch(`${server.url}/key?v=130`)).json()) as { publicKey: string };
  const client = await dialNoise(port, Buffer.from(key.publicKey.slice('mkey:'.length), 'hex'));
  const session = h2Session(client);
  try {
    for (const path of ['//[', '//a:b@', '/machine/register?%zz', 'http://[']) {
      // An HTTP/2 layer may reset a stream whose :path is not origin-form; that is an answer too.
      const res = await h2Request(session, path, '{}').catch((err: Error & { code?: string }) => ({ status: err.code }));
      assert.ok(res.status === 'ERR_HTTP2_STREAM_ERROR' || (Number(res.status) >= 400 && Number(res.status) < 500), `${path}: ${res.status}`);
    }
    const followup = await h2Request(session, '/machine/register', JSON.stringify({ NodeKey: `nodekey:${'ab'.repeat(32)}`, Followup: 'http://[' }));
    assert.equal(followup.status, 400);
  } finally {
    session.destroy();
    client.conn.destroy();
  }
  await assertServing('malformed Noise requests');
});

test('garbage STUN datagrams never crash the server', async () => {
  const socket = createSocket('udp4');
  const datagrams = [
    Buffer.alloc(0),
    Buffer.alloc(1),
    Buffer.from('0001000021124442', 'hex'),
    Buffer.concat([Buffer.from('000100082112a442', 'hex'), Buffer.alloc(12), Buffer.from('80280004ffffffff', 'hex')]),
    Buffer.alloc(1400, 0xff),
    Buffer.alloc(20, 0),
  ];
  for (const d of datagrams) await new Promise<void>((r) => socket.send(d, stunPort, '127.0.0.1', () => r()));
  socket.close();
  await new Promise((r) => setTimeout(r, 200));
  await assertServing('garbage datagrams');
});
