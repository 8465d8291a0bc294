/**
 * The SQLite store (better-sqlite3): WAL, foreign keys, and append-only migrations applied at open. An
 * acknowledged write survives a crash or power loss; a soft one (what clients report again anyway) a crash of
 * the process only.
 *
 * The connection runs at synchronous=NORMAL: a commit writes the WAL without an fsync, and the store fsyncs the
 * WAL file itself (wal-sync.ts) after each durable commit, as synchronous=FULL would, but not after a soft one.
 * Switching the level per soft write (two pragmas) cost a third of each such write, one per map request.
 * A group commit (registrations) is fsynced on libuv's thread pool instead; its writes are acknowledged once that
 * fsync is done. better-sqlite3 is synchronous, so an fsync in a COMMIT held the event loop: 8 % of a 10,000-node
 * mass connect was the server waiting on the disk with every stream, handshake and flush stalled behind it.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SshCheck } from '../domain/types.ts';
import { StoreConflictError } from './errors.ts';
import { openGroup, type Group } from './group.ts';
import { walSync } from './wal-sync.ts';
import { migrations } from './migrations.ts';
import { sqliteAudit } from './sqlite-audit.ts';
import type { Store, StoredTailnet, StoreTx } from './store.ts';
import { apiKeyParams, json, nodeParams, oauthClientParams, oauthTokenParams, preAuthKeyParams, sshCheckParams, tailnetFromRows, userParams, type Row } from './rows.ts';


/** The database's file name inside the data dir. */
export const databaseFileName = 'tailplane.sqlite';

export function openSqliteStore(path: string): Store {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  // From here on the store makes each durable commit durable itself (see top).
  db.pragma('synchronous = NORMAL');
  const audit = sqliteAudit(db);
  const tx = createTx(db, audit.append);
  /**
   * Runs a function in a transaction (a savepoint inside one). Made once: db.transaction() builds a new wrapper
   * each call, 1 % of a 10,000-node mass connect's CPU when each write made its own.
   */
  const inTx = db.transaction((fn: () => unknown) => fn()) as <T>(fn: () => T) => T;
  const txOf = <T>(fn: (tx: StoreTx) => T): T => inTx(() => fn(tx));
  const wal = walSync(path === ':memory:' ? undefined : `${path}-wal`);
  /** The open group commit: its transaction stays open on `db` until commitGroup runs. */
  let group: Group | undefined;
  const commitGroup = () => {
    const g = group;
    if (!g) return;
    group = undefined;
    try {
      db.exec('COMMIT');
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      g.reject(err);
      return;
    }
    wal.sync(g);
  };
  /**
   * Runs a durable write: committed and fsynced, unless it is part of an outer transaction (durable with it).
   * It must not wait for the open group, so the group commits first.
   */
  const durably = <T>(fn: () => T): T => {
    commitGroup();
    const result = fn();
    if (!db.inTransaction) wal.syncNow();
    return result;
  };
  return {
    // Pruning deletes and re-anchors in a transaction of its own.
    audit: { ...audit.store, prune: (before, record) => durably(() => audit.store.prune(before, record)) },
    load: () => loadAll(db),
    write: (fn, opts) =>
      conflicts(() => {
        // A soft write rides in the open group, if any (committed at the end of this turn).
        const run = () => txOf(fn);
        return opts?.soft ? run() : durably(run);
      }),
    transaction: (fn) => conflicts(() => durably(() => inTx(fn))),
    writeGrouped(fn) {
      // Inside a transaction of its own: a savepoint of it, durable when it commits (before this returns).
      if (!group && db.inTransaction) return { result: conflicts(() => txOf(fn)), durable: Promise.resolve() };
      if (!group) {
        // Committed without an fsync: wal.sync makes it durable off the event loop.
        db.exec('BEGIN IMMEDIATE');
        group = openGroup();
        setImmediate(commitGroup);
      }
      // Inside the open transaction better-sqlite3 runs this as a savepoint.
      return { result: conflicts(() => txOf(fn)), durable: group.durable };
    },
    healthy: () => {
      try {
        return db.prepare('SELECT 1 AS ok').get() !== undefined;
      } catch {
        return false;
      }
    },
    // SQLite's online backup API, a few pages per event-loop turn; writes through this same connection
    // during the copy are applied to it rather than restarting it.
    backup: async (path) => {
      await db.backup(path);
    },
    close: () => {
      commitGroup();
      wal.close();
      db.close();
    },
  };
}

/** SQLite's unique violations as StoreConflictError, named `table.column` as PostgreSQL's are. */
function conflicts<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      const column = /constraint failed: ([\w.]+)/.exec((err as Error).message)?.[1];
      throw new StoreConflictError(column ?? 'unknown');
    }
    throw err;
  }
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  const current = row.v ?? 0;
  if (current > migrations.length) {
    throw new Error(`database schema version ${current} is newer than this tailplane (${migrations.length})`);
  }
  for (let v = current + 1; v <= migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v - 1]!);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(v, new Date().toISOString());
    })();
  }
}

function loadAll(db: Database.Database): StoredTailnet {
  const hourAgo = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour')";
  return tailnetFromRows((sql) => db.prepare(sql).all() as Row[], hourAgo);
}

/**
 * INSERT, UPDATE and DELETE for one table, built from its column list so each column is named once.
 * `insertOnly` columns (secret hashes) are written at insert and never updated.
 */
function statements(db: Database.Database, table: string, columns: string[], insertOnly: string[] = []) {
  const insertColumns = [...columns, ...insertOnly];
  const insert = db.prepare(
    `INSERT INTO ${table} (${insertColumns.join(', ')}) VALUES (${insertColumns.map((c) => '@' + c).join(', ')})`,
  );
  const update = db.prepare(`UPDATE ${table} SET ${columns.map((c) => `${c} = @${c}`).join(', ')} WHERE id = @id`);
  const remove = db.prepare(`DELETE FROM ${table} WHERE id = ?`);
  return {
    insert: (params: Row) => Number(insert.run(params).lastInsertRowid),
    update: (id: number, params: Row) => {
      if (update.run({ ...params, id }).changes !== 1) throw new Error(`${table} ${id} not found`);
    },
    remove: (id: number) => {
      remove.run(id);
    },
  };
}

function createTx(db: Database.Database, appendAudit: StoreTx['appendAudit']): StoreTx {
  const columnsOf = (params: (x: never) => Row) => Object.keys(params({} as never));
  const users = statements(db, 'users', columnsOf(userParams));
  const nodes = statements(db, 'nodes', columnsOf(nodeParams));
  const preAuth = statements(db, 'pre_auth_keys', columnsOf(preAuthKeyParams), ['hash']);
  const apiKeys = statements(db, 'api_keys', columnsOf(apiKeyParams), ['hash']);
  const sshColumns = Object.keys(sshCheckParams({} as SshCheck));
  const putSshCheck = db.prepare(`INSERT OR REPLACE INTO ssh_checks (${sshColumns.join(', ')}) VALUES (${sshColumns.map((c) => '@' + c).join(', ')})`);
  const oauthClients = statements(db, 'oauth_clients', columnsOf(oauthClientParams), ['hash']);
  const oauthTokens = statements(db, 'oauth_tokens', columnsOf(oauthTokenParams), ['hash']);
  const usePreAuthKey = db.prepare('UPDATE pre_auth_keys SET used = 1 WHERE id = ? AND used = 0');
  const deleteExpiredTokens = db.prepare('DELETE FROM oauth_tokens WHERE expires_at < ?');
  const putSetting = db.prepare(
    'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
  );
  return {
    insertUser: (u) => users.insert(userParams(u)),
    updateUser: (u) => users.update(u.id, userParams(u)),
    deleteUser: (id) => users.remove(id),
    insertNode: (n) => nodes.insert(nodeParams(n)),
    updateNode: (n) => nodes.update(n.id, nodeParams(n)),
    deleteNode: (id) => nodes.remove(id),
    insertPreAuthKey: (k, hash) => preAuth.insert({ ...preAuthKeyParams(k), hash }),
    updatePreAuthKey: (k) => preAuth.update(k.id, preAuthKeyParams(k)),
    deletePreAuthKey: (id) => preAuth.remove(id),
    usePreAuthKey: (id) => {
      if (usePreAuthKey.run(id).changes !== 1) throw new StoreConflictError('pre_auth_keys.used');
    },
    insertApiKey: (k, hash) => apiKeys.insert({ ...apiKeyParams(k), hash }),
    updateApiKey: (k) => apiKeys.update(k.id, apiKeyParams(k)),
    deleteApiKey: (id) => apiKeys.remove(id),
    insertOAuthClient: (c, hash) => oauthClients.insert({ ...oauthClientParams(c), hash }),
    deleteOAuthClient: (id) => oauthClients.remove(id),
    insertOAuthToken: (t, hash) => oauthTokens.insert({ ...oauthTokenParams(t), hash }),
    deleteExpiredOAuthTokens: (now) => {
      deleteExpiredTokens.run(now);
    },
    putSetting: (key, value) => {
      putSetting.run(key, json(value));
    },
    putSshCheck: (c) => {
      putSshCheck.run(sshCheckParams(c));
    },
    appendAudit,
  };
}
