/**
 * `tailplane migrate`: moves a tailnet from an SQLite database to an empty PostgreSQL one. Every table (audit
 * log and its anchor included) is copied in one PostgreSQL transaction with the same ids, the identity
 * sequences continue after them, and the row counts are compared before COMMIT: the target ends up with the
 * whole tailnet or nothing.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { checkBackup, inUse } from '../backup.ts';
import { migrations } from '../migrations.ts';
import { MigrateError } from '../errors.ts';
import { openPostgresStore } from './store.ts';

/** Parents before children (foreign keys), then the rest. */
const tables = ['users', 'oauth_clients', 'oauth_tokens', 'pre_auth_keys', 'api_keys', 'nodes', 'settings', 'ssh_checks', 'audit_log', 'audit_anchor'];
/** Tables whose ids come from an identity column: it must continue after the copied ids. */
const identityTables = ['users', 'oauth_clients', 'oauth_tokens', 'pre_auth_keys', 'api_keys', 'nodes'];
/** Rows per INSERT statement. */
const chunk = 500;

export async function migrateSqliteToPostgres(sqlitePath: string, url: string): Promise<Record<string, number>> {
  let info;
  try {
    info = checkBackup(sqlitePath);
  } catch (err) {
    throw new MigrateError((err as Error).message);
  }
  if (info.schemaVersion !== migrations.length) {
    throw new MigrateError(`${sqlitePath} has schema version ${info.schemaVersion}: start this tailplane on it once (it upgrades to ${migrations.length}), then migrate`);
  }
  if (inUse(sqlitePath)) throw new MigrateError(`${sqlitePath} is open in a running tailplane server: stop it first, so no change is left behind`);
  // Creates the schema (or checks it is current).
  openPostgresStore({ url, poolSize: 1, timeoutMs: 30_000, tls: 'off' }).close();

  const source = new Database(sqlitePath, { readonly: true, fileMustExist: true });
  const target = new pg.Client({ connectionString: url });
  await target.connect();
  try {
    await target.query('BEGIN');
    const counts: Record<string, number> = {};
    for (const table of tables) {
      const [{ n }] = (await target.query(`SELECT count(*)::int AS n FROM ${table}`)).rows;
      if (n > 0) throw new MigrateError(`the target database is not empty (${table} has ${n} rows): migrate only into a new, empty database`);
    }
    for (const table of tables) {
      const rows = source.prepare(`SELECT * FROM ${table}`).all() as Record<string, unknown>[];
      counts[table] = rows.length;
      if (!rows.length) continue;
      const columns = Object.keys(rows[0]!);
      for (let i = 0; i < rows.length; i += chunk) {
        const part = rows.slice(i, i + chunk);
        const values = part.map((_, r) => `(${columns.map((_, c) => `$${r * columns.length + c + 1}`).join(', ')})`);
        // PostgreSQL takes SQLite's 0/1 for its BOOLEAN columns as they are.
        await target.query(`INSERT INTO ${table} (${columns.map((c) => `"${c}"`).join(', ')}) VALUES ${values.join(', ')}`, part.flatMap((row) => columns.map((c) => row[c])));
      }
    }
    for (const table of identityTables) {
      await target.query(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), coalesce(max(id), 0) + 1, false) FROM ${table}`);
    }
    for (const table of tables) {
      const [{ n }] = (await target.query(`SELECT count(*)::int AS n FROM ${table}`)).rows;
      if (n !== counts[table]) throw new MigrateError(`copied ${n} rows of ${table}, expected ${counts[table]}: nothing was committed`);
    }
    await target.query('COMMIT');
    return counts;
  } catch (err) {
    await target.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await target.end();
    source.close();
  }
}
