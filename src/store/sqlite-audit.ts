/**
 * The audit log's rows in SQLite: appended inside the transaction of the change they record, read with filters
 * and an id cursor, and pruned by age with the last pruned entry's hash kept as the chain's new anchor.
 */
import type Database from 'better-sqlite3';
import { emptyAnchor, seal, type AuditAnchor, type AuditDraft, type AuditEntry } from '../audit/chain.ts';
import { entryFromRow } from './rows.ts';
import type { AuditQuery, AuditStore } from './store.ts';

type Row = Record<string, unknown>;


export function sqliteAudit(db: Database.Database) {
  const insert = db.prepare(
    'INSERT INTO audit_log (id, time, actor, door, source, action, object, summary, prev_hash, hash) VALUES (@id, @time, @actor, @door, @source, @action, @object, @summary, @prevHash, @hash)',
  );
  const last = db.prepare('SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1');
  const anchorRow = db.prepare('SELECT id, hash FROM audit_anchor WHERE only = 1');
  const anchor = (): AuditAnchor => (anchorRow.get() as AuditAnchor | undefined) ?? emptyAnchor;

  /** Appends after the newest entry (or the anchor); the caller runs it inside the change's transaction. */
  const append = (draft: AuditDraft, time: string): AuditEntry => {
    const prev = (last.get() as AuditAnchor | undefined) ?? anchor();
    const entry = seal(draft, prev.id + 1, time, prev.hash);
    insert.run(entry);
    return entry;
  };

  const store: AuditStore = {
    list(q: AuditQuery): AuditEntry[] {
      const where: string[] = [];
      const params: Row = {};
      if (q.since) (where.push('time >= @since'), (params.since = q.since));
      if (q.until) (where.push('time < @until'), (params.until = q.until));
      if (q.actor) (where.push('actor = @actor'), (params.actor = q.actor));
      if (q.object) (where.push('object = @object'), (params.object = q.object));
      if (q.after) (where.push('id > @after'), (params.after = q.after));
      const sql = `SELECT * FROM audit_log ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id LIMIT @limit`;
      return (db.prepare(sql).all({ ...params, limit: q.limit ?? -1 }) as Row[]).map(entryFromRow);
    },
    *all() {
      for (const r of db.prepare('SELECT * FROM audit_log ORDER BY id').iterate() as Iterable<Row>) yield entryFromRow(r);
    },
    anchor,
    prune(before: string, record: (removed: number) => AuditDraft | null): number {
      return db.transaction(() => {
        const lastPruned = db.prepare('SELECT id, hash FROM audit_log WHERE time < ? ORDER BY id DESC LIMIT 1').get(before) as AuditAnchor | undefined;
        if (!lastPruned) return 0;
        // Entries go in id order, so everything up to the last old entry goes; its hash becomes the anchor.
        const removed = db.prepare('DELETE FROM audit_log WHERE id <= ?').run(lastPruned.id).changes;
        db.prepare('INSERT INTO audit_anchor (only, id, hash) VALUES (1, @id, @hash) ON CONFLICT(only) DO UPDATE SET id = excluded.id, hash = excluded.hash').run(lastPruned);
        const draft = record(removed);
        if (draft) append(draft, new Date().toISOString());
        return removed;
      })();
    },
  };
  return { append, store };
}
