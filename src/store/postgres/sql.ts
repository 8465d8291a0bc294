/**
 * Statement builders for the PostgreSQL store: positional parameters from a record's columns, and the mapping
 * of PostgreSQL's refusals to the store's errors.
 */
import { StoreConflictError } from '../errors.ts';
import type { Row } from '../rows.ts';
import { StatementError } from './bridge.ts';
import type { Stmt } from './protocol.ts';

export function insertStmt(table: string, params: Row): Stmt {
  const cols = Object.keys(params);
  return {
    sql: `INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING id`,
    params: Object.values(params),
  };
}

/** An update by id that fails unless the row exists. */
export function updateStmt(table: string, id: number, params: Row): Stmt {
  const cols = Object.keys(params);
  return {
    sql: `UPDATE ${table} SET ${cols.map((c, i) => `${c} = $${i + 2}`).join(', ')} WHERE id = $1`,
    params: [id, ...Object.values(params)],
    expectOne: `${table} ${id}`,
  };
}

/** INSERT … ON CONFLICT (key) DO UPDATE: the SQLite store's INSERT OR REPLACE. */
export function upsertStmt(table: string, key: string, params: Row): Stmt {
  const cols = Object.keys(params);
  const set = cols.filter((c) => c !== key).map((c) => `${c} = excluded.${c}`);
  return {
    sql: `INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT (${key}) DO UPDATE SET ${set.join(', ')}`,
    params: Object.values(params),
  };
}

/**
 * PostgreSQL's unique violation (23505) as StoreConflictError named `table.column` like SQLite's: default
 * constraint names are `<table>_<column>_key` (or `_pkey`), our own unique indexes `<table>_<column>`.
 */
export function storeError(err: unknown): unknown {
  if (!(err instanceof StatementError)) return err;
  const f = err.failure;
  if (f.code === '23505' && f.table && f.constraint) {
    const column = f.constraint.replace(`${f.table}_`, '').replace(/(^|_)p?key$/, '') || 'id';
    return new StoreConflictError(`${f.table}.${column}`);
  }
  if (f.code === 'TPCON' && f.constraint) return new StoreConflictError(f.constraint);
  return err;
}
