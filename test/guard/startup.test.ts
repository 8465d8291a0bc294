/**
 * A server that cannot bind every listener does not start half-way: `serve` exits non-zero with one line that
 * names the setting to change, no stack trace, and leaves no listener behind.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { freePort } from '../harness/tailscaled.ts';
import { serveToEnd } from './serve.ts';

/** True when something accepts TCP connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer().once('error', () => resolve(true));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
  });
}

test('a taken STUN port stops serve with a message naming derp.stun_listen_addr', async () => {
  const udp = createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const stunPort = udp.address().port;
  const httpPort = await freePort();
  try {
    const r = serveToEnd(['--listen', `127.0.0.1:${httpPort}`], { TAILPLANE_DERP_STUN_LISTEN_ADDR: `127.0.0.1:${stunPort}` });
    assert.equal(r.signal, null, `serve kept running with a taken STUN port:\n${r.stderr}`);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`tailplane: cannot listen on UDP 127\\.0\\.0\\.1:${stunPort} for STUN: the address is already in use`));
    assert.match(r.stderr, /Set derp\.stun_listen_addr \(or TAILPLANE_DERP_STUN_LISTEN_ADDR\) to a free host:port, or "" to turn STUN off\./);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(await listening(httpPort), false, 'the HTTP listener was not left open');
  } finally {
    udp.close();
  }
});

test('a taken listen port stops serve with a message naming listen_addr, and STUN is released', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  const port = (taken.address() as { port: number }).port;
  const stunPort = await freePort();
  try {
    const r = serveToEnd(['--listen', `127.0.0.1:${port}`], { TAILPLANE_DERP_STUN_LISTEN_ADDR: `127.0.0.1:${stunPort}` });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`tailplane: cannot listen on TCP 127\\.0\\.0\\.1:${port}: the address is already in use`));
    assert.match(r.stderr, /Set listen_addr \(or TAILPLANE_LISTEN_ADDR\) to a free host:port\./);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    const udp = createSocket('udp4');
    await new Promise<void>((resolve, reject) => udp.once('error', reject).bind(stunPort, '127.0.0.1', () => resolve()));
    udp.close();
  } finally {
    taken.close();
  }
});

test('a PostgreSQL store that does not answer stops serve with a message naming store.postgres.url, without its password', async () => {
  const closed = await freePort();
  const r = serveToEnd(['--listen', `127.0.0.1:${await freePort()}`], {
    TAILPLANE_DERP_STUN_LISTEN_ADDR: '',
    TAILPLANE_STORE_TYPE: 'postgres',
    TAILPLANE_STORE_POSTGRES_URL: `postgres://tailplane:s3cret-pw@127.0.0.1:${closed}/tailplane`,
    TAILPLANE_STORE_POSTGRES_TIMEOUT: '2s',
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`tailplane: store unavailable: PostgreSQL at 127\\.0\\.0\\.1:${closed}/tailplane \\(store\\.postgres\\.url\\) did not answer: .*ECONNREFUSED`));
  assert.doesNotMatch(r.stderr, /s3cret-pw/, 'the password is not printed');
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});
