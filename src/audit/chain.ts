/**
 * The audit log's entries and their hash chain: each entry carries the hash of the one before it and its own
 * hash covers every field, so editing or deleting a row breaks the chain at the first entry after the change.
 */
import { createHash } from 'node:crypto';

/** The doors a change can come through. */
export type Door = 'api-v1' | 'api-v2' | 'console' | 'cli' | 'engine' | 'terraform' | 'sync' | 'control' | 'oidc' | 'system';

/** What a write records, before it has a place in the chain. */
export interface AuditDraft {
  readonly actor: string;
  readonly door: Door;
  readonly source: string;
  readonly action: string;
  readonly object: string;
  /** A short before → after description; never a secret. */
  readonly summary: string;
}

export interface AuditEntry extends AuditDraft {
  readonly id: number;
  readonly time: string;
  readonly prevHash: string;
  readonly hash: string;
}

/** Where the chain starts: the hash of the last pruned entry, or the empty string when nothing was pruned. */
export interface AuditAnchor {
  readonly id: number;
  readonly hash: string;
}

export const emptyAnchor: AuditAnchor = { id: 0, hash: '' };

/** The hash of an entry: every field but the hash itself, in a fixed order. */
export function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  const fields = [e.id, e.time, e.actor, e.door, e.source, e.action, e.object, e.summary, e.prevHash];
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

export function seal(draft: AuditDraft, id: number, time: string, prevHash: string): AuditEntry {
  const e = { ...draft, id, time, prevHash };
  return { ...e, hash: entryHash(e) };
}

export type VerifyResult = { ok: true; entries: number; anchor: AuditAnchor } | { ok: false; entries: number; brokenId: number; reason: string };

/** Walks the entries in id order from the anchor; the first entry that does not follow is named. */
export function verifyChain(anchor: AuditAnchor, entries: Iterable<AuditEntry>): VerifyResult {
  let prev = anchor;
  let n = 0;
  for (const e of entries) {
    n++;
    if (e.prevHash !== prev.hash || e.id !== prev.id + 1) {
      return { ok: false, entries: n, brokenId: e.id, reason: `entry ${e.id} does not follow entry ${prev.id}: an entry before it was deleted or changed` };
    }
    if (entryHash(e) !== e.hash) return { ok: false, entries: n, brokenId: e.id, reason: `entry ${e.id} was changed after it was written (its hash does not match)` };
    prev = e;
  }
  return { ok: true, entries: n, anchor };
}
