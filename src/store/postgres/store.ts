/**
 * The PostgreSQL store: the same synchronous Store as SQLite's, run through the blocking bridge. A write's
 * statements are queued and sent together with the next one whose answer is needed (an insert's id, the audit
 * chain's head) or with COMMIT, so a typical write costs two or three waits. Every transaction records the
 * (entity, id) pairs it touched in change_log and notifies `tailplane_changes`, for the other replicas.
 */
import { randomUUID } from 'node:crypto';
import { StoreUnavailableError } from '../errors.ts';
import {
  apiKeyFromRow, apiKeyParams, json, loadQueries, nodeFromRow, nodeParams, oauthClientFromRow, oauthClientParams,
  oauthTokenFromRow, oauthTokenParams, preAuthKeyFromRow, preAuthKeyParams, sshCheckFromRow, sshCheckParams,
  tailnetOf, userFromRow, userParams, type Row,
} from '../rows.ts';
import type { ChangeRef, SharedLog, Store, StoreTx } from '../store.ts';
import { appendAudit, pgAudit, type TxSql } from './audit.ts';
import { openBridge, type Bridge } from './bridge.ts';
import { pgMigrations } from './migrations.ts';
import type { Stmt } from './protocol.ts';
import { insertStmt, storeError, updateStmt, upsertStmt } from './sql.ts';

export interface PostgresOptions {
  readonly url: string;
  readonly poolSize: number;
  readonly timeoutMs: number;
  /** off: plain TCP; require: TLS without checking the certificate; verify-full: TLS checked against `ca` (or the system's CAs). */
  readonly tls: 'off' | 'require' | 'verify-full';
  /** PEM of the CA that signs the server's certificate (verify-full). */
  readonly ca?: string;
}

/** The channel a committed change is announced on; its payload is the newest change_log seq. */
export const changeChannel = 'tailplane_changes';

/** Advisory lock keys: schema migration, change-log order (held from a transaction's log insert to its commit). */
const migrateLock = 0x7470_0001;
const changeLock = 0x7470_0002;

/** The tables behind SharedLog's entities, with the key column and the row mapper. */
const entities: Record<string, { table: string; key: string; map: (r: Row) => unknown }> = {
  user: { table: 'users', key: 'id', map: userFromRow },
  node: { table: 'nodes', key: 'id', map: nodeFromRow },
  pre_auth_key: { table: 'pre_auth_keys', key: 'id', map: preAuthKeyFromRow },
  api_key: { table: 'api_keys', key: 'id', map: apiKeyFromRow },
  oauth_client: { table: 'oauth_clients', key: 'id', map: oauthClientFromRow },
  oauth_token: { table: 'oauth_tokens', key: 'id', map: oauthTokenFromRow },
  setting: { table: 'settings', key: 'key', map: (r) => JSON.parse(r.value as string) },
  ssh_check: { table: 'ssh_checks', key: 'id', map: sshCheckFromRow },
};

export function openPostgresStore(opts: PostgresOptions): Store {
  const ssl = opts.tls === 'off' ? false : { rejectUnauthorized: opts.tls === 'verify-full', ...(opts.ca ? { ca: opts.ca } : {}) };
  const bridge = openBridge({ url: opts.url, poolSize: opts.poolSize, timeoutMs: opts.timeoutMs, ssl });
  try {
    migrate(bridge);
  } catch (err) {
    void bridge.close();
    throw err;
  }
  const origin = randomUUID();
  const tx = openTransactions(bridge, origin);
  const shared: SharedLog = {
    origin,
    lastSeq: () => Number(bridge.call([{ sql: 'SELECT coalesce(max(seq), 0) AS s FROM change_log' }])[0]!.rows[0]!.s),
    since: (seq, limit) =>
      bridge.call([{ sql: 'SELECT seq, entity, entity_id AS id, origin FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2', params: [seq, limit] }])[0]!
        .rows as unknown as ChangeRef[],
    read(entity, id) {
      const e = entities[entity];
      if (!e) throw new Error(`unknown entity ${entity}`);
      // The id goes as text: PostgreSQL types the parameter from its column (integer ids, text SSH check ids).
      const row = bridge.call([{ sql: `SELECT * FROM ${e.table} WHERE ${e.key} = $1`, params: [id] }])[0]!.rows[0];
      return row ? e.map(row) : null;
    },
    query: (sql, params) => bridge.call([{ sql, params }])[0]!.rows,
    announce(entity, id) {
      bridge.call([{ sql: 'BEGIN' }, ...logStmts([[entity, id]], origin), notifyStmt, { sql: 'COMMIT' }], { hold: true, release: true });
    },
  };
  return {
    load() {
      // One snapshot for every table, so the loaded tailnet is as of one instant.
      const q = loadQueries(`to_char((now() - interval '1 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);
      const keys = Object.keys(q) as (keyof typeof q)[];
      const results = bridge.call(
        [{ sql: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' }, ...keys.map((k) => ({ sql: q[k] })), { sql: 'COMMIT' }],
        { hold: true, release: true },
      );
      return tailnetOf((k) => results[keys.indexOf(k) + 1]!.rows);
    },
    write: (fn, o) => tx.run((t) => fn(t), o?.soft ?? false),
    transaction: (fn) => tx.run(() => fn(), false),
    healthy() {
      if (bridge.down) return false;
      try {
        bridge.call([{ sql: 'SELECT 1' }]);
        return true;
      } catch {
        return false;
      }
    },
    backup: () =>
      Promise.reject(
        new Error('tailplane backup copies the SQLite store; this server stores its tailnet in PostgreSQL: back it up with pg_dump (or your PostgreSQL backups)'),
      ),
    audit: pgAudit({ call: (stmts) => bridge.call(stmts), transaction: (fn) => tx.run((_, t) => fn(t), false) }),
    shared,
    close: () => void bridge.close(),
  };
}

function migrate(bridge: Bridge): void {
  // Replicas starting together: the lock makes the second wait and then find the schema current.
  const head = bridge.call(
    [
      { sql: 'BEGIN' },
      { sql: 'SELECT pg_advisory_xact_lock($1)', params: [migrateLock] },
      { sql: 'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)' },
      { sql: 'SELECT coalesce(max(version), 0) AS v FROM schema_migrations' },
    ],
    { hold: true },
  );
  try {
    const current = Number(head[3]!.rows[0]!.v);
    if (current > pgMigrations.length) {
      throw new Error(`database schema version ${current} is newer than this tailplane (${pgMigrations.length})`);
    }
    const steps: Stmt[] = [];
    for (let v = current + 1; v <= pgMigrations.length; v++) {
      steps.push({ sql: pgMigrations[v - 1]! }, { sql: 'INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', params: [v, new Date().toISOString()] });
    }
    bridge.call([...steps, { sql: 'COMMIT' }], { hold: true, release: true });
  } catch (err) {
    rollback(bridge);
    throw err;
  }
}

/** Ends the held transaction; when the server cannot be told, the worker drops the connection (which rolls back). */
function rollback(bridge: Bridge): void {
  try {
    bridge.call([{ sql: 'ROLLBACK' }], { hold: true, release: true });
  } catch {
    bridge.abandon();
  }
}

/**
 * The change-log rows for `touched`, after the lock that keeps seq in commit order (held to COMMIT: a later
 * transaction's rows get higher seqs and become visible after these).
 */
function logStmts(touched: Iterable<[string, string]>, origin: string): Stmt[] {
  const list = [...touched];
  if (!list.length) return [];
  return [
    { sql: 'SELECT pg_advisory_xact_lock($1)', params: [changeLock] },
    {
      sql: 'INSERT INTO change_log (entity, entity_id, origin) SELECT e, i, $3 FROM unnest($1::text[], $2::text[]) AS t(e, i)',
      params: [list.map((t) => t[0]), list.map((t) => t[1]), origin],
    },
  ];
}

/** Delivered at COMMIT (dropped on rollback): the newest seq, so replicas know how far to read. */
const notifyStmt: Stmt = { sql: `SELECT pg_notify('${changeChannel}', (SELECT coalesce(max(seq), 0) FROM change_log)::text)` };

/**
 * The transaction machinery: an outermost run opens a transaction (BEGIN queued, not sent), nested runs are
 * savepoints, statements queue until an answer is needed, and the outermost commit sends the rest with the
 * change-log rows and COMMIT in one call.
 */
function openTransactions(bridge: Bridge, origin: string) {
  let queue: Stmt[] = [];
  /** 0 outside a transaction; nesting depth inside. */
  let depth = 0;
  /** Whether the held connection has the transaction open (something was sent since BEGIN). */
  let sent = false;
  let touched = new Map<string, [string, string]>();
  /** Whether a statement logged changes itself (expired tokens), so the commit notifies even with nothing touched. */
  let logged = false;
  const touch = (entity: string, id: string | number) => touched.set(`${entity}\0${id}`, [entity, String(id)]);

  /** Sends the queue plus `stmts` on the transaction's connection; returns the answers to `stmts`. */
  const call = (stmts: Stmt[]) => {
    const batch = [...queue, ...stmts];
    queue = [];
    sent = true;
    try {
      return bridge.call(batch, { hold: true }).slice(batch.length - stmts.length);
    } catch (err) {
      throw storeError(err);
    }
  };
  const insert = (entity: string, table: string, params: Row) => {
    const id = call([insertStmt(table, params)])[0]!.rows[0]!.id as number;
    touch(entity, id);
    return id;
  };
  const enqueue = (entity: string, id: string | number, stmt: Stmt) => {
    queue.push(stmt);
    touch(entity, id);
  };
  const remove = (entity: string, table: string) => (id: number) =>
    enqueue(entity, id, { sql: `DELETE FROM ${table} WHERE id = $1`, params: [id] });

  const txSql: TxSql = { call, enqueue: (stmt) => queue.push(stmt) };

  const storeTx: StoreTx = {
    insertUser: (u) => insert('user', 'users', userParams(u)),
    updateUser: (u) => enqueue('user', u.id, updateStmt('users', u.id, userParams(u))),
    deleteUser: remove('user', 'users'),
    insertNode: (n) => insert('node', 'nodes', nodeParams(n)),
    updateNode: (n) => enqueue('node', n.id, updateStmt('nodes', n.id, nodeParams(n))),
    deleteNode: remove('node', 'nodes'),
    insertPreAuthKey: (k, hash) => insert('pre_auth_key', 'pre_auth_keys', { ...preAuthKeyParams(k), hash }),
    updatePreAuthKey: (k) => enqueue('pre_auth_key', k.id, updateStmt('pre_auth_keys', k.id, preAuthKeyParams(k))),
    deletePreAuthKey: remove('pre_auth_key', 'pre_auth_keys'),
    usePreAuthKey: (id) =>
      enqueue('pre_auth_key', id, { sql: 'UPDATE pre_auth_keys SET used = true WHERE id = $1 AND used = false', params: [id], conflict: 'pre_auth_keys.used' }),
    insertApiKey: (k, hash) => insert('api_key', 'api_keys', { ...apiKeyParams(k), hash }),
    updateApiKey: (k) => enqueue('api_key', k.id, updateStmt('api_keys', k.id, apiKeyParams(k))),
    deleteApiKey: remove('api_key', 'api_keys'),
    insertOAuthClient: (c, hash) => insert('oauth_client', 'oauth_clients', { ...oauthClientParams(c), hash }),
    deleteOAuthClient: remove('oauth_client', 'oauth_clients'),
    insertOAuthToken: (t, hash) => insert('oauth_token', 'oauth_tokens', { ...oauthTokenParams(t), hash }),
    deleteExpiredOAuthTokens: (now) => {
      // The deleted ids are only known to the database: it logs them itself, under the change-order lock.
      queue.push(
        { sql: 'SELECT pg_advisory_xact_lock($1)', params: [changeLock] },
        {
          sql: `WITH gone AS (DELETE FROM oauth_tokens WHERE expires_at < $1 RETURNING id)
                INSERT INTO change_log (entity, entity_id, origin) SELECT 'oauth_token', id::text, $2 FROM gone`,
          params: [now, origin],
        },
      );
      logged = true;
    },
    putSetting: (key, value) => enqueue('setting', key, upsertStmt('settings', 'key', { key, value: json(value) })),
    putSshCheck: (c) => enqueue('ssh_check', c.id, upsertStmt('ssh_checks', 'id', sshCheckParams(c))),
    appendAudit: (draft, time) => appendAudit(txSql, draft, time),
  };

  /** Runs fn in the transaction (opening it when outermost, as a savepoint when nested). */
  function run<T>(fn: (t: StoreTx, sql: TxSql) => T, soft: boolean): T {
    if (depth > 0) {
      const sp = `s${depth}`;
      queue.push({ sql: `SAVEPOINT ${sp}` });
      depth++;
      try {
        const result = fn(storeTx, txSql);
        queue.push({ sql: `RELEASE SAVEPOINT ${sp}` });
        return result;
      } catch (err) {
        // Back to the savepoint, so an outer fn that catches this may go on; if even that fails, its commit will.
        if (!(err instanceof StoreUnavailableError)) {
          try {
            call([{ sql: `ROLLBACK TO SAVEPOINT ${sp}` }]);
          } catch {}
        }
        throw err;
      } finally {
        depth--;
      }
    }
    queue = [{ sql: 'BEGIN' }, ...(soft ? [{ sql: 'SET LOCAL synchronous_commit = off' }] : [])];
    touched = new Map();
    logged = false;
    sent = false;
    depth = 1;
    try {
      const result = fn(storeTx, txSql);
      const log = touched.size || logged ? [...logStmts(touched.values(), origin), notifyStmt] : [];
      const batch = [...queue, ...log, { sql: 'COMMIT' }];
      queue = [];
      try {
        bridge.call(batch, { hold: true, release: true });
      } catch (err) {
        sent = true;
        throw storeError(err);
      }
      return result;
    } catch (err) {
      if (sent && !(err instanceof StoreUnavailableError)) rollback(bridge);
      else if (sent) bridge.abandon();
      throw err;
    } finally {
      queue = [];
      depth = 0;
      sent = false;
    }
  }
  return { run };
}
