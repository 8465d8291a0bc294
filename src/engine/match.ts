/** Pairs declared nodes and pre-auth keys with live ones, since neither carries an id the code could know. */
import type { ApiNode, ApiPreAuthKey } from '../domain/api.ts';
import type { DesiredNode, DesiredPreAuthKey } from './desired.ts';

export interface NodeMatches {
  readonly pairs: readonly { readonly desired: DesiredNode; readonly live: ApiNode }[];
  /** Declared nodes that have not registered yet. */
  readonly waiting: readonly DesiredNode[];
  readonly warnings: readonly string[];
}

/** A declared node matches a live node by MagicDNS name first, then by hostname; each live node matches once. */
export function matchNodes(desired: readonly DesiredNode[], live: readonly ApiNode[]): NodeMatches {
  const claimed = new Set<string>();
  const pairs: { desired: DesiredNode; live: ApiNode }[] = [];
  const waiting: DesiredNode[] = [];
  const warnings: string[] = [];
  const free = (n: ApiNode) => !claimed.has(n.id);
  // Names first for every declaration, so a hostname match cannot steal a node another declaration names exactly.
  const byName = new Map(desired.map((d) => [d, live.find((n) => free(n) && n.givenName === d.name)]));
  for (const n of byName.values()) if (n) claimed.add(n.id);
  for (const d of desired) {
    let node = byName.get(d);
    if (!node) {
      const candidates = live.filter((n) => free(n) && n.name === d.name);
      if (candidates.length > 1) warnings.push(`node.${d.name}: ${candidates.length} live nodes have hostname "${d.name}"; using id ${candidates[0]!.id}`);
      node = candidates[0];
      if (node) claimed.add(node.id);
    }
    if (node) pairs.push({ desired: d, live: node });
    else waiting.push(d);
  }
  return { pairs, waiting, warnings };
}

/** The identity of a pre-auth key that the server keeps: owner, tags and flags (never the secret). */
export function keySignature(k: { user?: string | null; tags?: readonly string[]; reusable?: boolean; ephemeral?: boolean }): string {
  return JSON.stringify([k.user ?? null, [...(k.tags ?? [])].sort(), k.reusable ?? false, k.ephemeral ?? false]);
}

const liveSignature = (k: ApiPreAuthKey) =>
  keySignature({ user: k.user?.name ?? null, tags: k.aclTags, reusable: k.reusable, ephemeral: k.ephemeral });

export const isExpired = (expiration: string | null, now: Date) => expiration !== null && Date.parse(expiration) <= now.getTime();

/**
 * Each declared key claims one live, unexpired key with its signature (a used single-use key still counts: it did
 * its job); declared keys left without one are to be created. Returns the unclaimed live keys too.
 */
export function matchPreAuthKeys(desired: readonly DesiredPreAuthKey[], live: readonly ApiPreAuthKey[], now: Date) {
  const open = live.filter((k) => !isExpired(k.expiration, now));
  const claimed = new Set<string>();
  const missing: DesiredPreAuthKey[] = [];
  for (const d of desired) {
    const sig = keySignature(d);
    const hit = open.find((k) => !claimed.has(k.id) && liveSignature(k) === sig);
    if (hit) claimed.add(hit.id);
    else missing.push(d);
  }
  return { missing, unclaimed: open.filter((k) => !claimed.has(k.id)) };
}

/** "90d" from now, or an RFC 3339 time as is; undefined stays undefined (no expiry). */
export function resolveExpiration(expiration: string | undefined, now: Date): string | undefined {
  const m = expiration && /^([1-9][0-9]*)([smhdw])$/.exec(expiration);
  if (!m) return expiration && new Date(Date.parse(expiration)).toISOString();
  const unit = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[m[2] as 's' | 'm' | 'h' | 'd' | 'w'];
  return new Date(now.getTime() + Number(m[1]) * unit * 1000).toISOString();
}
