/**
 * The audit log's rows in PostgreSQL: the same chain as SQLite's (src/store/sqlite-audit.ts). Appending takes
 * an advisory lock held to commit, so replicas writing at once still chain one entry after another.
 */
import { emptyAnchor, seal, type AuditAnchor, type AuditDraft, type AuditEntry } from '../../audit/chain.ts';
import { entryFromRow } from '../rows.ts';
import type { AuditQuery, AuditStore } from '../store.ts';
import type { Results } from './bridge.ts';
import type { Stmt } from './protocol.ts';

/** Inside a transaction: `call` sends queued statements plus these and answers these; `enqueue` defers one. */
export interface TxSql {
  call(stmts: Stmt[]): Results;
  enqueue(stmt: Stmt): void;
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

/** Appends after the newest entry (or the anchor), in the caller's transaction. */
export function appendAudit(t: TxSql, draft: AuditDraft, time: string): AuditEntry {
  const [, head] = t.call([{ sql: 'SELECT pg_advisory_xact_lock($1)', params: [auditLock] }, { sql: headSql }]);
  const prev = (head!.rows[0] as unknown as AuditAnchor | undefined) ?? emptyAnchor;
  const e = seal(draft, prev.id + 1, time, prev.hash);
  t.enqueue({
    sql: `INSERT INTO audit_log (${entryColumns.join(', ')}) VALUES (${entryColumns.map((_, i) => `$${i + 1}`).join(', ')})`,
    params: [e.id, e.time, e.actor, e.door, e.source, e.action, e.object, e.summary, e.prevHash, e.hash],
  });
  return e;
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
        if (draft) appendAudit(t, draft, new Date().toISOString());
        return removed!.rowCount;
      });
    },
  };
}
