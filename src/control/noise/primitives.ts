/**
 * The Noise primitives: X25519, BLAKE2s and HKDF-BLAKE2s on Node's built-in OpenSSL crypto, ChaCha20-Poly1305 on
 * libsodium. Every transport record is one AEAD call, and OpenSSL's cost a cipher object per call (~4.5 us and
 * five allocations for a 100-byte record, against 0.5 us in libsodium): a tenth of the server's CPU in a churn
 * wave, where each of 10,000 streams is sent a small delta.
 */
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import sodium from 'sodium-native';

/** Size of every X25519 key and of every derived symmetric key. */
export const keySize = 32;
/** Size of the Poly1305 authentication tag appended to every ciphertext. */
export const tagSize = 16;
/** ChaCha20-Poly1305 IETF nonce size. */
export const nonceSize = 12;

// The DER header that turns a raw 32-byte X25519 private key into PKCS#8 (RFC 8410): a JWK would need the public
// half too. Private keys are imported rarely (the server's static key, once); public keys go through JWK.
const pkcs8Prefix = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** An X25519 key pair as raw 32-byte arrays. */
export interface KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/**
 * Generates a fresh X25519 key pair. Raw keys go in and out as JWK, not DER: OpenSSL 3 decodes and encodes DER
 * through its generic decoder framework, several times slower than the raw-key path JWK takes, and every Noise
 * handshake imports two public keys and exports one ephemeral key pair.
 *
 * The pair is encoded by the key generation itself and imported again for the DH, never exported from the
 * generated KeyObject: Node 20 deadlocks when a JWK export of a freshly generated key allocates, the allocation
 * runs a GC, and the GC finalizes the finished generation job, whose destructor takes the mutex the export holds
 * (node's KeyPairGenConfig). It happened every few thousand handshakes, stopping the server's event loop.
 */
export function generateKeyPair(): KeyPair {
  // @types/node has no overload for the JWK encodings node supports.
  const encodings = { privateKeyEncoding: { format: 'jwk' }, publicKeyEncoding: { format: 'jwk' } } as never;
  const { privateKey: jwk } = generateKeyPairSync('x25519', encodings) as unknown as { privateKey: JsonWebKey };
  const raw = Buffer.from(jwk.d!, 'base64url');
  // The handshake's DH uses this key next: keep the KeyObject so it is not imported again.
  importedPrivate.set(raw, createPrivateKey({ key: jwk, format: 'jwk' }));
  return { privateKey: raw, publicKey: Buffer.from(jwk.x!, 'base64url') };
}

/** A handshake's ephemeral key pair: the private half stays an OpenSSL key object, never exported. */
export interface EphemeralKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
}

/**
 * Generates an ephemeral X25519 key pair at half generateKeyPair's cost: only the public half is encoded (by
 * the generation itself, as above), and the private half is used as the key object it was generated as.
 */
export function generateEphemeral(): EphemeralKeyPair {
  const encodings = { publicKeyEncoding: { format: 'jwk' } } as never;
  const { privateKey, publicKey } = generateKeyPairSync('x25519', encodings) as unknown as { privateKey: KeyObject; publicKey: JsonWebKey };
  return { privateKey, publicKey: Buffer.from(publicKey.x!, 'base64url') };
}

/** Derives the X25519 public key of a raw private key. */
export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return Buffer.from(importPrivate(privateKey).export({ format: 'jwk' }).x!, 'base64url');
}

/** X25519(priv, pub); throws on a low-order public key (all-zero shared secret), as Go's curve25519.X25519 does. */
export function x25519(privateKey: Uint8Array | KeyObject, publicKey: Uint8Array): Uint8Array {
  const keys = { privateKey: privateKey instanceof Uint8Array ? importPrivate(privateKey) : privateKey, publicKey: importPublic(publicKey) };
  let shared: Buffer;
  try {
    shared = diffieHellman(keys);
  } catch {
    throw new Error('x25519: low-order public key'); // OpenSSL refuses an all-zero result itself
  }
  if (shared.every((b) => b === 0)) throw new Error('x25519: low-order public key');
  return shared;
}

/**
 * Imported private keys by their byte array: the server's static key is the same array in every handshake,
 * and importing it each time cost ~6 % of the server's CPU in a mass connect.
 */
const importedPrivate = new WeakMap<Uint8Array, KeyObject>();

function importPrivate(raw: Uint8Array): KeyObject {
  let key = importedPrivate.get(raw);
  if (!key) importedPrivate.set(raw, (key = importPrivateUncached(raw)));
  return key;
}

function importPrivateUncached(raw: Uint8Array) {
  if (raw.length !== keySize) throw new Error('x25519: private key must be 32 bytes');
  return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, raw]), format: 'der', type: 'pkcs8' });
}

/**
 * Imported public keys by their byte array: a handshake uses each of the peer's two keys in two DHs. The bytes
 * are kept and compared, so an array whose contents changed is imported again.
 */
const importedPublic = new WeakMap<Uint8Array, { x: string; key: KeyObject }>();

function importPublic(raw: Uint8Array): KeyObject {
  if (raw.length !== keySize) throw new Error('x25519: public key must be 32 bytes');
  const x = Buffer.from(raw).toString('base64url');
  const hit = importedPublic.get(raw);
  if (hit?.x === x) return hit.key;
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
  importedPublic.set(raw, { x, key });
  return key;
}

/** BLAKE2s-256 of the concatenation of the parts. */
export function blake2s(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('blake2s256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function hmacBlake2s(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac('blake2s256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HKDF-BLAKE2s (RFC 5869, empty info) with two 32-byte outputs: Noise's HKDF(ck, ikm). */
export function hkdf2(salt: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const prk = hmacBlake2s(salt, ikm);
  const t1 = hmacBlake2s(prk, Uint8Array.of(1));
  const t2 = hmacBlake2s(prk, t1, Uint8Array.of(2));
  return [t1, t2];
}

/** ChaCha20-Poly1305 seal: returns ciphertext || tag. */
export function seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad?: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + tagSize);
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out, plaintext, ad ?? null, null, nonce, key);
  return out;
}

/**
 * ChaCha20-Poly1305 seal of the concatenation of `pieces`, written into `out` at `at` as ciphertext || tag: the
 * pieces are copied there once and encrypted in place. Returns the offset after the tag.
 */
export function sealInto(key: Uint8Array, nonce: Uint8Array, pieces: readonly Uint8Array[], out: Buffer, at: number): number {
  let end = at;
  for (const piece of pieces) {
    out.set(piece, end);
    end += piece.length;
  }
  const message = out.subarray(at, end);
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out.subarray(at, end + tagSize), message, null, null, nonce, key);
  return end + tagSize;
}

/** ChaCha20-Poly1305 open of ciphertext || tag; throws when authentication fails. */
export function open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad?: Uint8Array): Buffer {
  if (sealed.length < tagSize) throw new Error('chacha20poly1305: ciphertext shorter than tag');
  const body = Buffer.allocUnsafe(sealed.length - tagSize);
  try {
    sodium.crypto_aead_chacha20poly1305_ietf_decrypt(body, null, sealed, ad ?? null, nonce, key);
  } catch {
    throw new Error('chacha20poly1305: message authentication failed');
  }
  return body;
}
