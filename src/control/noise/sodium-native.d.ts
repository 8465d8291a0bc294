/** The part of sodium-native (libsodium's bindings) the Noise transport uses; the package ships no types. */
declare module 'sodium-native' {
  /** Writes ciphertext || tag (message.length + 16 bytes) into `ciphertext`, which may be `message` itself. */
  export function crypto_aead_chacha20poly1305_ietf_encrypt(
    ciphertext: Uint8Array,
    message: Uint8Array,
    ad: Uint8Array | null,
    nsec: null,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number;
  /** Writes the plaintext into `message`; throws when the tag does not verify. */
  export function crypto_aead_chacha20poly1305_ietf_decrypt(
    message: Uint8Array,
    nsec: null,
    ciphertext: Uint8Array,
    ad: Uint8Array | null,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number;
}
