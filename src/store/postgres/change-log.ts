/**
 * The change log other replicas read (src/replica/bus.ts): a row per (entity, id) a transaction touched,
 * written before its COMMIT, and a notification on `changeChannel` delivered at COMMIT (dropped on rollback)
 * carrying the newest seq and who wrote it, so other replicas know how far to read. Built here for the store's own transactions and
 * for the bridge worker, which writes a group commit's rows without those of the writes that failed.
 */
import type { LogRow, Stmt } from './protocol.ts';

/** The channel a committed change is announced on; its payload is the newest change_log seq and the writer's origin. */
export const changeChannel = 'tailplane_changes';

/**
 * The change-log rows for `rows` (none: undefined). Transactions commit in another order than they took their
 * seqs; readers treat a gap as a transaction still committing and read it again, so no lock orders them.
 */
export function logStmt(rows: readonly LogRow[], origin: string): Stmt | undefined {
  if (!rows.length) return undefined;
  return {
    sql: 'INSERT INTO change_log (entity, entity_id, origin) SELECT e, i, $3 FROM unnest($1::text[], $2::text[]) AS t(e, i)',
    params: [rows.map((r) => r.entity), rows.map((r) => r.id), origin],
  };
}

/** The notification of a commit by `origin` (a replica skips its own: it has applied them already). */
export function notifyStmt(origin: string): Stmt {
  return { sql: `SELECT pg_notify('${changeChannel}', (SELECT coalesce(max(seq), 0) FROM change_log)::text || ' ' || $1)`, params: [origin] };
}

/** Whether a notification's payload says `origin` made the change. */
export const notifiedBy = (payload: string | undefined, origin: string) => payload?.endsWith(` ${origin}`) ?? false;
