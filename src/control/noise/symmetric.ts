/** The Noise symmetric state (h, ck) shared by both handshake roles: MixHash, MixDH, EncryptAndHash, Split. */
import type { KeyObject } from 'node:crypto';
import { blake2s, hkdf2, nonceSize, open, seal, x25519 } from './primitives.ts';

/** The Noise instantiation tailscale's control protocol uses; 33 bytes long, so it is hashed into h0 (trap T3). */
export const protocolName = 'Noise_IK_25519_ChaChaPoly_BLAKE2s';
/** Mixed in as the prologue, followed by the client's decimal version from the initiation header (trap T2). */
export const protocolVersionPrefix = 'Tailscale Control Protocol v';

/** Handshake AEADs are single-use, so their nonce is always zero. */
const zeroNonce = new Uint8Array(nonceSize);

/** The chaining key and handshake hash of an in-flight handshake. */
export interface SymmetricState {
  mixHash(data: Uint8Array): void;
  /** MixKey(X25519(priv, pub)); returns the single-use handshake key. */
  mixDH(privateKey: Uint8Array | KeyObject, publicKey: Uint8Array): Uint8Array;
  encryptAndHash(key: Uint8Array, plaintext: Uint8Array): Buffer;
  /** Throws when the tag does not verify. */
  decryptAndHash(key: Uint8Array, ciphertext: Uint8Array): Buffer;
  /** Returns [k1, k2]: the initiator sends with k1, the responder with k2 (trap T6). */
  split(): [Uint8Array, Uint8Array];
  handshakeHash(): Uint8Array;
}

/** Starts a symmetric state with the protocol name and the version prologue already mixed in. */
export function initSymmetricState(version: number): SymmetricState {
  let h = blake2s(Buffer.from(protocolName));
  let ck = h;
  let finished = false;
  const live = () => {
    if (finished) throw new Error('noise: symmetric state used after Split');
  };
  const state: SymmetricState = {
    mixHash(data) {
      live();
      h = blake2s(h, data);
    },
    mixDH(privateKey, publicKey) {
      live();
      const [nextCk, key] = hkdf2(ck, x25519(privateKey, publicKey));
      ck = nextCk;
      return key;
    },
    encryptAndHash(key, plaintext) {
      live();
      const ct = seal(key, zeroNonce, plaintext, h);
      h = blake2s(h, ct);
      return ct;
    },
    decryptAndHash(key, ciphertext) {
      live();
      const pt = open(key, zeroNonce, ciphertext, h);
      h = blake2s(h, ciphertext);
      return pt;
    },
    split() {
      live();
      finished = true;
      return hkdf2(ck, new Uint8Array(0));
    },
    handshakeHash: () => h,
  };
  state.mixHash(Buffer.from(protocolVersionPrefix + String(version)));
  return state;
}
