/** Curve25519 node keys as DERP sees them: raw 32 bytes on the wire, "nodekey:<hex>" / "privkey:<hex>" in text. */
import { x25519 } from '@noble/curves/ed25519.js';

export const KEY_LEN = 32;

export interface KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** Parses "privkey:<hex>", bare hex, or raw bytes into a key pair; generates one when absent. */
export function keyPair(privateKey?: Uint8Array | string): KeyPair {
  const priv = privateKey === undefined ? x25519.utils.randomSecretKey() : parsePrivate(privateKey);
  return { privateKey: priv, publicKey: x25519.getPublicKey(priv) };
}

function parsePrivate(k: Uint8Array | string): Uint8Array {
  const raw = typeof k === 'string' ? hexKey(k.replace(/^privkey:/, '')) : k;
  if (raw.length !== KEY_LEN) throw new Error('DERP private key must be 32 bytes');
  return new Uint8Array(raw);
}

function hexKey(hex: string): Uint8Array {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error('key must be 64 hex digits');
  return Buffer.from(hex, 'hex');
}

/** "nodekey:<hex>", the text form tailcfg and the control layer use. */
export function nodeKeyString(raw: Uint8Array): string {
  return 'nodekey:' + Buffer.from(raw).toString('hex');
}

/** Raw key bytes from "nodekey:<hex>" (or bare hex). */
export function parseNodeKey(text: string): Uint8Array {
  return hexKey(text.replace(/^nodekey:/, ''));
}
