/** Unit tests of the TS2021 Noise IK handshake: round trip with the in-test initiator, validation, HKDF cross-check. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { hkdf } from '@noble/hashes/hkdf.js';
import { blake2s as nobleBlake2s } from '@noble/hashes/blake2.js';
import { x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { HandshakeError, initiationSize, respond, responseSize } from '../../src/control/noise/handshake.ts';
import { initiate } from '../../src/control/noise/initiator.ts';
import { machineKeyText } from '../../src/control/noise/keys.ts';
import { buildErrorFrame } from '../../src/control/noise/messages.ts';
import { blake2s, generateKeyPair, hkdf2, open, publicKeyOf, seal, sealInto, x25519 } from '../../src/control/noise/primitives.ts';

test('primitives agree with @noble: BLAKE2s, HKDF-BLAKE2s (HMAC block 64), X25519', () => {
  const salt = new Uint8Array(32).fill(7);
  const ikm = new Uint8Array(32).fill(9);
  const expected = hkdf(nobleBlake2s, ikm, salt, new Uint8Array(0), 64);
  const [a, b] = hkdf2(salt, ikm);
  assert.deepEqual(Buffer.concat([a, b]), Buffer.from(expected));
  const [e1, e2] = hkdf2(salt, new Uint8Array(0)); // Split's empty ikm
  assert.deepEqual(Buffer.concat([e1, e2]), Buffer.from(hkdf(nobleBlake2s, new Uint8Array(0), salt, new Uint8Array(0), 64)));
  assert.deepEqual(Buffer.from(blake2s(Buffer.from('Noise_IK_25519_ChaChaPoly_BLAKE2s'))), Buffer.from(nobleBlake2s(Buffer.from('Noise_IK_25519_ChaChaPoly_BLAKE2s'))));
  const p = generateKeyPair();
  const q = generateKeyPair();
  assert.deepEqual(Buffer.from(publicKeyOf(p.privateKey)), Buffer.from(p.publicKey));
  assert.deepEqual(Buffer.from(nobleX25519.getPublicKey(p.privateKey)), Buffer.from(p.publicKey));
  assert.deepEqual(Buffer.from(x25519(p.privateKey, q.publicKey)), Buffer.from(nobleX25519.getSharedSecret(p.privateKey, q.publicKey)));
  assert.throws(() => x25519(p.privateKey, new Uint8Array(32)), /low-order/);
});

test('ChaCha20-Poly1305 (libsodium) agrees with @noble: with and without AD, sealed in place from pieces', () => {
  const key = new Uint8Array(32).map((_, i) => i * 7);
  const nonce = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2);
  const ad = Buffer.from('ad');
  const text = Buffer.from('a record spanning several pieces of an HTTP/2 flush');
  for (const a of [undefined, ad]) {
    const expected = Buffer.from(chacha20poly1305(key, nonce, a).encrypt(text));
    assert.deepEqual(seal(key, nonce, text, a), expected);
    assert.deepEqual(open(key, nonce, expected, a), text);
  }
  const out = Buffer.alloc(text.length + 16 + 5);
  const end = sealInto(key, nonce, [text.subarray(0, 3), text.subarray(3, 20), text.subarray(20)], out, 5);
  assert.equal(end, out.length);
  assert.deepEqual(out.subarray(5), Buffer.from(chacha20poly1305(key, nonce).encrypt(text)));
  const tampered = Buffer.from(out.subarray(5));
  tampered[0]! ^= 1;
  assert.throws(() => open(key, nonce, tampered), /authentication failed/);
  assert.throws(() => open(key, nonce, tampered.subarray(0, 15)), /shorter than tag/);
});

test('handshake round trip: machine key recovered, split keys cross over, hashes equal', () => {
  const server = generateKeyPair();
  const machine = generateKeyPair();
  const init = initiate(machine, server.publicKey, 130);
  assert.equal(init.initiation.length, initiationSize);
  assert.equal(init.initiation.readUInt16BE(0), 130, 'version is big-endian in bytes 0-1');
  assert.equal(init.initiation[2], 0x01);
  assert.equal(init.initiation.readUInt16BE(3), 96);

  const res = respond(init.initiation, server);
  assert.equal(res.version, 130);
  assert.equal(res.machineKey, machineKeyText(machine.publicKey));
  assert.equal(res.response.length, responseSize);
  assert.equal(res.response[0], 0x02);
  assert.equal(res.response.readUInt16BE(1), 48);

  const client = init.finish(res.response);
  assert.deepEqual(Buffer.from(client.txKey), Buffer.from(res.rxKey), 'client tx (k1) = server rx');
  assert.deepEqual(Buffer.from(client.rxKey), Buffer.from(res.txKey), 'client rx (k2) = server tx');
  assert.notDeepEqual(Buffer.from(res.txKey), Buffer.from(res.rxKey));
  assert.deepEqual(Buffer.from(client.handshakeHash), Buffer.from(res.handshakeHash));
});

test('the prologue binds the cleartext version: a rewritten version fails authentication', () => {
  const server = generateKeyPair();
  const init = initiate(generateKeyPair(), server.publicKey, 130).initiation;
  const forged = Buffer.from(init);
  forged.writeUInt16BE(131, 0);
  assert.throws(() => respond(forged, server), (err: Error) => !(err instanceof HandshakeError) && /authentication failed/.test(err.message));
});

test('the wrong server key or a flipped bit fails authentication, without an error-frame message', () => {
  const server = generateKeyPair();
  const init = initiate(generateKeyPair(), generateKeyPair().publicKey, 142).initiation;
  assert.throws(() => respond(init, server), /authentication failed/);
  const good = initiate(generateKeyPair(), server.publicKey, 142).initiation;
  for (const at of [10, 50, 90, 100]) {
    const bad = Buffer.from(good);
    bad[at]! ^= 1;
    assert.throws(() => respond(bad, server), /authentication failed|low-order/);
  }
});

test('malformed initiations raise HandshakeError with controlbase texts', () => {
  const server = generateKeyPair();
  const good = initiate(generateKeyPair(), server.publicKey, 142).initiation;
  const cases: [Buffer, RegExp][] = [
    [good.subarray(0, 100), /wrong handshake initiation size/],
    [Buffer.concat([good, Buffer.of(0)]), /wrong handshake initiation size/],
    [Buffer.alloc(0), /wrong handshake initiation size/],
    [Object.assign(Buffer.from(good), { [2]: 0x02 }), /unexpected handshake message type/],
    [(() => { const b = Buffer.from(good); b.writeUInt16BE(95, 3); return b; })(), /wrong handshake initiation length/],
  ];
  for (const [msg, re] of cases) assert.throws(() => respond(msg, server), (e: Error) => e instanceof HandshakeError && re.test(e.message));
});

test('error frame layout: [0x03][u16 BE len][text]; the initiator reports it', () => {
  const f = buildErrorFrame('nope');
  assert.deepEqual([...f.subarray(0, 3)], [0x03, 0, 4]);
  assert.equal(f.subarray(3).toString(), 'nope');
  assert.equal(buildErrorFrame('x'.repeat(70_000)).length, 3 + 0xffff);
  const init = initiate(generateKeyPair(), generateKeyPair().publicKey, 142);
  assert.throws(() => init.finish(f), /server error: nope/);
});

test('key generation survives the garbage collector: 10,000 pairs of each kind in a row (Node 20 deadlocked at ~2,500)', async () => {
  // In a child process, so a deadlock fails this test on its timeout instead of hanging the suite.
  // Ephemeral pairs as a handshake uses them: the key object straight into a DH, which also allocates.
  const script = `import { generateEphemeral, generateKeyPair, x25519 } from ${JSON.stringify(new URL('../../src/control/noise/primitives.ts', import.meta.url).href)};
    for (let i = 0; i < 10000; i++) generateKeyPair();
    const peer = generateKeyPair().publicKey;
    for (let i = 0; i < 10000; i++) x25519(generateEphemeral().privateKey, peer);
    console.log('generated');`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
  assert.equal(stdout.trim(), 'generated');
});
