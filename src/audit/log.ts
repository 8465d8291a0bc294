/**
 * The audit log as the doors see it: filtered reads with an id cursor, chain verification, and pruning by age
 * (itself recorded as an entry, after the anchor that keeps the rest verifiable).
 */
import type { AuditQuery, Store } from '../store/store.ts';
import { verifyChain, type AuditEntry, type VerifyResult } from './chain.ts';
import { currentActor } from './context.ts';

/** The most entries one page holds. */
export const maxPage = 1000;

export function createAuditLog(store: Store) {
  return {
    /** One page in id order; `next` is the cursor for the following page, null on the last. */
    list(q: AuditQuery): { entries: AuditEntry[]; next: number | null } {
      const limit = Math.min(q.limit ?? maxPage, maxPage);
      const entries = store.audit.list({ ...q, limit: limit + 1 });
      const more = entries.length > limit;
      if (more) entries.pop();
      return { entries, next: more ? entries[entries.length - 1]!.id : null };
    },
    verify: (): VerifyResult => verifyChain(store.audit.anchor(), store.audit.all()),
    /** Deletes entries older than `before`; returns how many went. */
    prune(before: Date): number {
      const who = currentActor();
      const cutoff = before.toISOString();
      return store.audit.prune(cutoff, (removed) => ({ ...who, action: 'audit.prune', object: 'audit', summary: `${removed} entries before ${cutoff} →` }));
    },
  };
}

export type AuditLog = ReturnType<typeof createAuditLog>;
