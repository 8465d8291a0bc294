/** NaCl crypto_box (X25519 + HSalsa20 + XSalsa20-Poly1305) in the `nonce || tag || ciphertext` layout Go's key.NodePrivate.SealTo uses. */
import { randomBytes } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { hsalsa, xsalsa20poly1305 } from '@noble/ciphers/salsa.js';

export const NONCE_LEN = 24;
/** Poly1305 tag that precedes the ciphertext. */
export const TAG_LEN = 16;

// "expand 32-byte k", the Salsa20 constant HSalsa20 mixes in.
const SIGMA = new TextEncoder().encode('expand 32-byte k');

/** Views bytes as host-order 32-bit words, which is what noble's hsalsa expects. */
function words(bytes: Uint8Array): Uint32Array {
  const copy = new Uint8Array(bytes); // fresh, so 4-byte aligned
  return new Uint32Array(copy.buffer, 0, copy.length / 4);
}

/** crypto_box_beforenm: the symmetric key shared by `mySecret` and `theirPublic`, or null for a degenerate point. */
export function boxKey(mySecret: Uint8Array, theirPublic: Uint8Array): Uint8Array | null {
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(mySecret, theirPublic);
  } catch {
    return null; // low-order public key: noble refuses an all-zero secret
  }
  const out = new Uint32Array(8);
  hsalsa(words(SIGMA), words(shared), new Uint32Array(4), out);
  return new Uint8Array(out.buffer);
}

/** Seals msg to theirPublic with a random nonce; returns nonce || tag || ciphertext. */
export function seal(msg: Uint8Array, mySecret: Uint8Array, theirPublic: Uint8Array): Uint8Array {
  const key = boxKey(mySecret, theirPublic);
  if (!key) throw new Error('naclbox: invalid public key');
  const nonce = randomBytes(NONCE_LEN);
  const boxed = xsalsa20poly1305(key, nonce).encrypt(msg);
  const out = new Uint8Array(NONCE_LEN + boxed.length);
  out.set(nonce, 0);
  out.set(boxed, NONCE_LEN);
  return out;
}

/** Opens nonce || tag || ciphertext from theirPublic; null when it does not authenticate. */
export function open(sealed: Uint8Array, mySecret: Uint8Array, theirPublic: Uint8Array): Uint8Array | null {
  if (sealed.length < NONCE_LEN + TAG_LEN) return null;
  const key = boxKey(mySecret, theirPublic);
  if (!key) return null;
  try {
    return xsalsa20poly1305(key, sealed.subarray(0, NONCE_LEN)).decrypt(sealed.subarray(NONCE_LEN));
  } catch {
    return null;
  }
}
