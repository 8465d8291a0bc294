/**
 * The audit log's rows in PostgreSQL: the same chain as SQLite's (src/store/sqlite-audit.ts). A transaction's
 * entries are chained by the bridge worker as the transaction ends (appendPending), under an advisory lock held
 * to its commit: replicas writing at once still chain one entry after another, and the lock is taken after the
 * transaction's other statements, so it is held only for the append and the commit.
 */
import { emptyAnchor, seal, type AuditAnchor, type AuditDraft, type AuditEntry } from '../../audit/chain.ts';
import { entryFromRow } from '../rows.ts';
import type { AuditQuery, AuditStore } from '../store.ts';
import type { Results } from './bridge.ts';
import type { PendingAudit, Stmt } from './protocol.ts';

/** Inside a transaction: `call` sends queued statements plus these and answers these; `enqueue` defers one. */
export interface TxSql {
  call(stmts: Stmt[]): Results;
  enqueue(stmt: Stmt): void;
  /** Appends an audit entry when the transaction ends. */
  audit(entry: PendingAudit): void;
}

export interface AuditSql {
  /** Runs statements outside any transaction. */
  call(stmts: Stmt[]): Results;
  /** Runs fn in a transaction of its own. */
  transaction<T>(fn: (t: TxSql) => T): T;
}

const auditLock = 0x7470_0003;
/** Columns in the order of `entryColumns`' values. */
const entryColumns = ['id', 'time', 'actor', 'door', 'source', 'action', 'object', 'summary', 'prev_hash', 'hash'];

const headSql = `(SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1) UNION ALL (SELECT id, hash FROM audit_anchor) ORDER BY id DESC LIMIT 1`;

type Query = (sql: string, params?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

/** In the bridge worker, inside the transaction: chains `pending` after the newest entry and inserts them. */
export async function appendPending(query: Query, pending: readonly PendingAudit[]): Promise<void> {
  await query('SELECT pg_advisory_xact_lock($1)', [auditLock]);
  let prev = ((await query(headSql)).rows[0] as unknown as AuditAnchor | undefined) ?? emptyAnchor;
  const entries: AuditEntry[] = [];
  for (const { draft, time } of pending) {
    const e = seal(draft, prev.id + 1, time, prev.hash);
    entries.push(e);
    prev = e;
  }
  // In rows of a few hundred: one statement may carry at most 65,535 parameters.
  for (let at = 0; at < entries.length; at += 500) {
    const rows = entries.slice(at, at + 500);
    const values = rows.map((_, i) => `(${entryColumns.map((_, j) => `$${i * entryColumns.length + j + 1}`).join(', ')})`);
    const params = rows.flatMap((e) => [e.id, e.time, e.actor, e.door, e.source, e.action, e.object, e.summary, e.prevHash, e.hash]);
    await query(`INSERT INTO audit_log (${entryColumns.join(', ')}) VALUES ${values.join(', ')}`, params);
  }
}

export function pgAudit(sql: AuditSql): AuditStore {
  const anchor = (): AuditAnchor => (sql.call([{ sql: 'SELECT id, hash FROM audit_anchor WHERE "only" = 1' }])[0]!.rows[0] as unknown as AuditAnchor | undefined) ?? emptyAnchor;
  return {
    list(q: AuditQuery): AuditEntry[] {
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (cond: string, v: unknown) => (params.push(v), where.push(cond.replace('?', `$${params.length}`)));
      if (q.since) add('time >= ?', q.since);
      if (q.until) add('time < ?', q.until);
      if (q.actor) add('actor = ?', q.actor);
      if (q.object) add('object = ?', q.object);
      if (q.after) add('id > ?', q.after);
      const limit = q.limit !== undefined && q.limit >= 0 ? ` LIMIT ${Math.floor(q.limit)}` : '';
      const text = `SELECT * FROM audit_log ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id${limit}`;
      return sql.call([{ sql: text, params }])[0]!.rows.map(entryFromRow);
    },
    *all() {
      // In pages, so a long log is never held whole in memory.
      for (let after = 0; ; ) {
        const rows = sql.call([{ sql: 'SELECT * FROM audit_log WHERE id > $1 ORDER BY id LIMIT 1000', params: [after] }])[0]!.rows;
        for (const r of rows) yield entryFromRow(r);
        if (rows.length < 1000) return;
        after = rows[rows.length - 1]!.id as number;
      }
    },
    anchor,
    prune(before: string, record: (removed: number) => AuditDraft | null): number {
      return sql.transaction((t) => {
        const [, last] = t.call([
          { sql: 'SELECT pg_advisory_xact_lock($1)', params: [auditLock] },
          { sql: 'SELECT id, hash FROM audit_log WHERE time < $1 ORDER BY id DESC LIMIT 1', params: [before] },
        ]);
        const lastPruned = last!.rows[0] as unknown as AuditAnchor | undefined;
        if (!lastPruned) return 0;
        // Entries go in id order, so everything up to the last old entry goes; its hash becomes the anchor.
        const [removed] = t.call([
          { sql: 'DELETE FROM audit_log WHERE id <= $1', params: [lastPruned.id] },
          {
            sql: 'INSERT INTO audit_anchor ("only", id, hash) VALUES (1, $1, $2) ON CONFLICT ("only") DO UPDATE SET id = excluded.id, hash = excluded.hash',
            params: [lastPruned.id, lastPruned.hash],
          },
        ]);
        const draft = record(removed!.rowCount);
        if (draft) t.audit({ draft, time: new Date().toISOString() });
        return removed!.rowCount;
      });
    },
  };
}
