/** Tests of /key and the /ts2021 upgrade with the in-test client: HTTP/2 over Noise, refusals, and isolation of bad connections. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { createNoiseUpgrade, type NoiseUpgrade } from '../../src/control/upgrade.ts';
import { machineKeyText } from '../../src/control/noise/keys.ts';
import { generateKeyPair } from '../../src/control/noise/primitives.ts';
import { dialNoise, h2Request, h2Session, sendUpgrade } from './noise-client.ts';

const serverKey = generateKeyPair();
const logged: string[] = [];
const logger = {
  debug: (o: object, m?: string) => void logged.push(`${m} ${JSON.stringify(o)}`),
  info: (o: object, m?: string) => void logged.push(`${m} ${JSON.stringify(o)}`),
  warn: (o: object, m?: string) => void logged.push(`${m} ${JSON.stringify(o)}`),
};
let upgrade: NoiseUpgrade;
let server: http.Server;
let port: number;

before(async () => {
  upgrade = createNoiseUpgrade({
    keyPair: serverKey,
    logger,
    onRequest(req, res, peer) {
      if (req.url === '/throw') throw new Error('handler bug');
      void req.body().then((body) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ peer, path: req.url, body: body.toString() }));
      });
    },
  });
  server = http.createServer();
  upgrade.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as { port: number }).port;
});
after(() => {
  upgrade.close();
  server.close();
});

test('GET /key returns the Noise public key as mkey JSON', async () => {
  const res = await fetch(`http://127.0.0.1:${port}/key?v=142`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { publicKey: string; legacyPublicKey: string };
  assert.equal(body.publicKey, machineKeyText(serverKey.publicKey));
  assert.equal(body.legacyPublicKey, `mkey:${'0'.repeat(64)}`);
  assert.equal((await fetch(`http://127.0.0.1:${port}/key?v=abc`)).status, 400);
  assert.equal((await fetch(`http://127.0.0.1:${port}/ts2021`, { method: 'POST' })).status, 426);
  assert.equal((await fetch(`http://127.0.0.1:${port}/elsewhere`)).status, 404);
});

test('upgrade: exact 101 headers, 51-byte response, then HTTP/2 requests that know the peer', async () => {
  const client = await dialNoise(port, serverKey.publicKey, { version: 130 });
  assert.equal(client.reply.head, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade');
  assert.equal(client.reply.message.length, 51);
  const session = h2Session(client);
  const [r1, r2] = await Promise.all([h2Request(session, '/machine/register', '{"a":1}'), h2Request(session, '/machine/map', '{}')]);
  assert.equal(r1.status, 200);
  const body = JSON.parse(r1.body.toString());
  assert.deepEqual(body.peer, { machineKey: machineKeyText(client.machine.publicKey), version: 130, source: '127.0.0.1' });
  assert.equal(body.body, '{"a":1}');
  assert.equal(JSON.parse(r2.body.toString()).path, '/machine/map');
  const r3 = await h2Request(session, '/throw');
  assert.equal(r3.status, 500, 'a throwing handler answers 500 and keeps the connection');
  assert.equal((await h2Request(session, '/again')).status, 200);
  session.close();
});

test('version < 113 is refused with an error frame before any key agreement', async () => {
  const client = dialNoise(port, serverKey.publicKey, { version: 112 });
  await assert.rejects(client, /server error: unsupported client version 112: this control server needs capability version 113/);
  await dialNoise(port, serverKey.publicKey, { version: 113 }).then((c) => c.conn.destroy());
});

test('garbage, truncated and replayed handshakes close only their own connection', async () => {
  const good = await dialNoise(port, serverKey.publicKey);
  const session = h2Session(good);
  assert.equal((await h2Request(session, '/before')).status, 200);

  const bad400 = await sendUpgrade(port, '!!!not base64!!!');
  assert.equal(bad400.status, 400);
  const missing = await sendUpgrade(port, undefined);
  assert.equal(missing.status, 400);

  const truncated = await sendUpgrade(port, good.initiation.subarray(0, 60).toString('base64'));
  assert.equal(truncated.status, 101);
  assert.equal(truncated.message[0], 0x03);
  assert.match(truncated.message.subarray(3).toString(), /wrong handshake initiation size/);

  const garbage = Buffer.from(good.initiation);
  randomBytes(96).copy(garbage, 5);
  const g = await sendUpgrade(port, garbage.toString('base64'));
  assert.equal(g.message[0], 0x03);
  assert.equal(g.message.subarray(3).toString(), 'handshake failed');

  // A replayed initiation gets a fresh response, but without the client's ephemeral key the replayer cannot
  // derive the session keys: its records fail authentication and only its connection is closed.
  const replay = await sendUpgrade(port, good.initiation.toString('base64'));
  assert.equal(replay.status, 101);
  assert.equal(replay.message[0], 0x02);
  replay.socket.resume();
  replay.socket.write(Buffer.concat([Buffer.from([0x04, 0x00, 0x20]), randomBytes(0x20)]));
  await once(replay.socket, 'close');

  assert.equal((await h2Request(session, '/after')).status, 200, 'the good connection still works');
  session.close();
  assert.ok(!logged.some((l) => l.includes(good.initiation.toString('base64'))), 'handshake bytes are never logged');
});

test('an oversized record or bogus HTTP/2 inside Noise closes only that connection', async () => {
  const good = await dialNoise(port, serverKey.publicKey);
  const session = h2Session(good);

  const big = await dialNoise(port, serverKey.publicKey);
  const hdr = Buffer.from([0x04, 0x10, 0x00]); // 3 + 4096 > 4096
  big.reply.socket.write(Buffer.concat([hdr, randomBytes(64)]));
  await once(big.reply.socket, 'close');

  const bogus = await dialNoise(port, serverKey.publicKey);
  bogus.conn.on('error', () => {});
  bogus.conn.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'); // not the HTTP/2 preface
  await once(bogus.reply.socket, 'close');

  assert.equal((await h2Request(session, '/still-fine')).status, 200);
  session.close();
  for (let i = 0; i < 100 && upgrade.connectionCount() > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(upgrade.connectionCount(), 0, 'every closed connection is forgotten');
});

test('a client that redials while the server stops is refused, so the HTTP server can close', async () => {
  // tailscaled redials as soon as its session ends; before, the listener took that redial during the stop and
  // its new session held the HTTP server's close open until the client gave up (two minutes in the bench).
  const stopping = createNoiseUpgrade({ keyPair: serverKey, logger, onRequest: (_req, res) => res.end() });
  const srv = http.createServer();
  stopping.attach(srv);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const srvPort = (srv.address() as { port: number }).port;
  const first = await dialNoise(srvPort, serverKey.publicKey);
  h2Session(first).on('error', () => {});
  const redial = new Promise<string>((resolve) =>
    first.conn.once('close', () => dialNoise(srvPort, serverKey.publicKey).then(() => resolve('upgraded'), (err: Error) => resolve(err.message))),
  );
  await stopping.close();
  assert.match(await redial, /HTTP 503/);
  srv.close();
  const closed = await Promise.race([once(srv, 'close').then(() => true), new Promise((r) => setTimeout(r, 5_000, false))]);
  assert.ok(closed, 'the HTTP server closed: no session outlived the stop');
});
