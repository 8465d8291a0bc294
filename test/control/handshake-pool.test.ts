/** Tests of Noise handshakes on worker threads: same keys as on the event loop, overflow, failures, and a real upgrade. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { test } from 'node:test';
import { HandshakeError } from '../../src/control/noise/handshake.ts';
import { createHandshakePool } from '../../src/control/noise/handshake-pool.ts';
import { initiate } from '../../src/control/noise/initiator.ts';
import { machineKeyText } from '../../src/control/noise/keys.ts';
import { generateKeyPair } from '../../src/control/noise/primitives.ts';
import { createNoiseUpgrade } from '../../src/control/upgrade.ts';
import { dialNoise, h2Request, h2Session, sendUpgrade } from './noise-client.ts';

const serverKey = generateKeyPair();

test('a worker answers the handshake with the keys the initiator derives', async () => {
  const failures: Error[] = [];
  const pool = createHandshakePool(serverKey, { workers: 1, onWorkerError: (err) => failures.push(err) });
  await pool.ready();
  const machine = generateKeyPair();
  const init = initiate(machine, serverKey.publicKey, 130);
  const pending = pool.respond(init.initiation);
  assert.ok(pending instanceof Promise, 'a ready worker with room takes the handshake');
  const r = await pending;
  const keys = init.finish(r.response);
  assert.ok(Buffer.isBuffer(r.response), 'the response comes back as a Buffer to write');
  assert.deepEqual([Buffer.from(r.rxKey), Buffer.from(r.txKey)], [Buffer.from(keys.txKey), Buffer.from(keys.rxKey)]);
  assert.equal(r.machineKey, machineKeyText(machine.publicKey));
  assert.equal(r.version, 130);
  assert.equal(pool.offloaded, 1);
  await pool.close();
  assert.deepEqual(failures, [], 'closing the pool is not a worker failure');
  const after = pool.respond(initiate(machine, serverKey.publicKey, 130).initiation);
  assert.ok(!(after instanceof Promise), 'after close, handshakes run on the calling thread');
});

test('with startAtPerSecond the workers start at the first burst: until then every handshake runs here', async () => {
  const pool = createHandshakePool(serverKey, { workers: 1, startAtPerSecond: 3 });
  const run = async () => {
    const init = initiate(generateKeyPair(), serverKey.publicKey, 130);
    const r = pool.respond(init.initiation);
    init.finish((await r).response);
    return r instanceof Promise;
  };
  await pool.ready();
  assert.deepEqual([await run(), await run()], [false, false], 'two in a second: no worker');
  assert.equal(await run(), false, 'the third runs here and starts the worker');
  await pool.ready();
  assert.equal(await run(), true, 'the started worker takes the next');
  assert.equal(pool.offloaded, 1);
  await pool.close();
});

test('beyond maxQueued per worker, the handshake runs on the calling thread', async () => {
  const pool = createHandshakePool(serverKey, { workers: 1, maxQueued: 1 });
  await pool.ready();
  const inits = [0, 1, 2].map(() => initiate(generateKeyPair(), serverKey.publicKey, 130));
  const results = inits.map((i) => pool.respond(i.initiation));
  assert.deepEqual(
    results.map((r) => r instanceof Promise),
    [true, false, false],
  );
  for (const [k, r] of results.entries()) inits[k]!.finish((await r).response);
  assert.equal(pool.offloaded, 1);
  await pool.close();
});

test("a worker's failures reach the caller as the event loop's would", async () => {
  const pool = createHandshakePool(serverKey, { workers: 1 });
  await pool.ready();
  const init = initiate(generateKeyPair(), serverKey.publicKey, 130).initiation;
  const forged = Buffer.from(init);
  randomBytes(48).copy(forged, 53);
  await assert.rejects(Promise.resolve(pool.respond(forged)), (err: Error) => !(err instanceof HandshakeError) && /authentication failed/.test(err.message));
  await assert.rejects(Promise.resolve(pool.respond(init.subarray(0, 60))), (err: Error) => err instanceof HandshakeError && /initiation size/.test(err.message));
  assert.equal(pool.offloaded, 2);
  await pool.close();
});

test('the upgrade serves HTTP/2 over connections a worker keyed, and refuses forged ones', async () => {
  const pool = createHandshakePool(serverKey, { workers: 1 });
  const quiet = { debug() {}, info() {}, warn() {} };
  const upgrade = createNoiseUpgrade({
    keyPair: serverKey,
    logger: quiet,
    handshakes: pool,
    onRequest: (req, res, peer) => void res.writeHead(200).end(JSON.stringify({ path: req.url, peer: peer.machineKey })),
  });
  const server = http.createServer();
  upgrade.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  try {
    await pool.ready();
    const clients = await Promise.all([0, 1, 2].map(() => dialNoise(port, serverKey.publicKey)));
    for (const c of clients) {
      const session = h2Session(c);
      const r = await h2Request(session, '/machine/map', '{}');
      assert.deepEqual(JSON.parse(r.body.toString()), { path: '/machine/map', peer: machineKeyText(c.machine.publicKey) });
      session.close();
    }
    const forged = Buffer.from(clients[0]!.initiation);
    randomBytes(96).copy(forged, 5);
    const refused = await sendUpgrade(port, forged.toString('base64'));
    assert.equal(refused.message[0], 0x03, 'an error frame');
    assert.equal(refused.message.subarray(3).toString(), 'handshake failed');
    assert.equal(pool.offloaded, 4, 'every handshake ran on the worker');
  } finally {
    await upgrade.close();
    server.close();
  }
});
