/** NaCl box: the shared-key derivation against NaCl's published vectors, round trips, and forged input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { x25519 } from '@noble/curves/ed25519.js';
import { boxKey, open, seal } from '../../src/derp/naclbox.ts';

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

test('crypto_box_beforenm matches NaCl (alice sk, bob pk -> core1 "firstkey")', () => {
  const aliceSk = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const bobPk = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  const k = boxKey(aliceSk, bobPk);
  assert.equal(Buffer.from(k!).toString('hex'), '1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389');
});

test('seal/open round trip, nonce || tag || ciphertext layout', () => {
  const a = x25519.keygen();
  const b = x25519.keygen();
  const msg = Buffer.from('{"version":2}');
  const sealed = seal(msg, a.secretKey, b.publicKey);
  assert.equal(sealed.length, 24 + 16 + msg.length);
  assert.deepEqual(Buffer.from(open(sealed, b.secretKey, a.publicKey)!), msg);
});

test('open refuses tampering, wrong keys, short input and low-order keys', () => {
  const a = x25519.keygen();
  const b = x25519.keygen();
  const sealed = seal(Buffer.from('hello'), a.secretKey, b.publicKey);
  const flipped = Uint8Array.from(sealed);
  flipped[flipped.length - 1]! ^= 1;
  assert.equal(open(flipped, b.secretKey, a.publicKey), null);
  assert.equal(open(sealed, b.secretKey, x25519.keygen().publicKey), null);
  assert.equal(open(sealed.subarray(0, 39), b.secretKey, a.publicKey), null);
  assert.equal(open(sealed, b.secretKey, new Uint8Array(32)), null);
});
