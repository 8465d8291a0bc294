/** Key text (`mkey:`/`nodekey:`/`discokey:`/`privkey:` + 64 hex) and the server's persisted Noise key pair. */
import { chmodSync, closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, keySize, publicKeyOf, type KeyPair } from './primitives.ts';

export type { KeyPair } from './primitives.ts';

/** The public key prefixes tailscale's types/key package uses in text form. */
export type PublicKeyPrefix = 'mkey:' | 'nodekey:' | 'discokey:';
/** The prefix of private keys in text form. */
export const privateKeyPrefix = 'privkey:';
/** Hex characters in a key's text form: two per byte. */
const hexLength = keySize * 2;
/** File name of the server's Noise private key inside the data dir. */
export const noiseKeyFileName = 'noise.key';

/** Formats raw key bytes as `<prefix><64 lowercase hex>`. */
export function formatKey(prefix: PublicKeyPrefix | typeof privateKeyPrefix, raw: Uint8Array): string {
  if (raw.length !== keySize) throw new Error(`key must be ${keySize} bytes, got ${raw.length}`);
  return prefix + Buffer.from(raw).toString('hex');
}

/** Formats a machine public key as `mkey:…`. */
export const machineKeyText = (raw: Uint8Array): string => formatKey('mkey:', raw);

/**
 * Parses `<prefix><64 lowercase hex>`. Throws a clear error on a wrong prefix, length or any other character;
 * returns `undefined` for the all-zero key, which clients send to mean "absent" (trap T17). Only the canonical
 * form is accepted: keys are indexed by their text, so `nodekey:ABC…` next to `nodekey:abc…` would let a second
 * machine pose as a clone of an existing node.
 */
export function parseKey(prefix: PublicKeyPrefix | typeof privateKeyPrefix, text: string): Uint8Array | undefined {
  if (typeof text !== 'string' || !text.startsWith(prefix)) throw new Error(`key must start with ${JSON.stringify(prefix)}`);
  const hex = text.slice(prefix.length);
  if (hex.length !== hexLength || !/^[0-9a-f]+$/.test(hex)) {
    throw new Error(`key must be ${JSON.stringify(prefix)} followed by exactly ${hexLength} hex characters, lowercase`);
  }
  const raw = new Uint8Array(Buffer.from(hex, 'hex'));
  return raw.every((b) => b === 0) ? undefined : raw;
}

/** True when the text is a well-formed key with the prefix (the zero key included). */
export function isKeyText(prefix: PublicKeyPrefix, text: unknown): text is string {
  if (typeof text !== 'string') return false;
  try {
    parseKey(prefix, text);
    return true;
  } catch {
    return false;
  }
}

/** True when the text is a well-formed key with the prefix that is not the all-zero "absent" key. */
export function isPresentKey(prefix: PublicKeyPrefix, text: unknown): text is string {
  try {
    return typeof text === 'string' && parseKey(prefix, text) !== undefined;
  } catch {
    return false;
  }
}

/** The all-zero key in text form, e.g. for `legacyPublicKey`. */
export const zeroKeyText = (prefix: PublicKeyPrefix): string => prefix + '0'.repeat(hexLength);

/**
 * Loads the server's Noise key pair from `<dataDir>/noise.key` (mode 0600), creating it on first start. The key
 * must stay stable across restarts (trap T33), so a malformed file is an error, never silently replaced.
 */
export function loadOrCreateNoiseKey(dataDir: string): KeyPair {
  const file = join(dataDir, noiseKeyFileName);
  if (!existsSync(file)) createKeyFile(dataDir, file);
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) chmodSync(file, 0o600);
  const text = readFileSync(file, 'utf8').trim();
  let privateKey: Uint8Array | undefined;
  try {
    privateKey = parseKey(privateKeyPrefix, text);
  } catch (err) {
    throw new Error(`${file}: not a Noise private key (${(err as Error).message})`);
  }
  if (!privateKey) throw new Error(`${file}: Noise private key is all zeros`);
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

/** Writes a fresh key to a temp file and links it into place, so a concurrent creator never overwrites one. */
function createKeyFile(dataDir: string, file: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, formatKey(privateKeyPrefix, generateKeyPair().privateKey) + '\n');
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
}
