/**
 * Bearer secrets (API keys, pre-auth keys): `<kind>-<prefix>-<secret>`, shown once, stored as a SHA-256 hash.
 * The secret has 192 random bits, so a fast hash is enough: there is nothing to brute-force.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** API key, pre-auth key, OAuth client secret, OAuth access token. */
export type SecretKind = 'tpkey-api' | 'tpkey-auth' | 'tpkey-client' | 'tpkey-oauth';

export interface NewSecret {
  /** The full key, handed to the user exactly once. */
  readonly key: string;
  readonly prefix: string;
  readonly hash: string;
}

const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';

function randomText(length: number): string {
  const bytes = randomBytes(length);
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function newSecret(kind: SecretKind): NewSecret {
  const prefix = randomText(12);
  const secret = randomBytes(24).toString('base64url');
  return { key: `${kind}-${prefix}-${secret}`, prefix, hash: hashSecret(secret) };
}

/** Splits a presented key into its prefix and secret; null when it is not of that kind. */
export function splitSecret(kind: SecretKind, key: string): { prefix: string; secret: string } | null {
  if (!key.startsWith(kind + '-')) return null;
  const rest = key.slice(kind.length + 1);
  const dash = rest.indexOf('-');
  if (dash !== 12) return null;
  return { prefix: rest.slice(0, dash), secret: rest.slice(dash + 1) };
}

export function secretMatches(secret: string, hash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
