/**
 * The PostgreSQL store: the same synchronous Store as SQLite's, run through the blocking bridge. A write's
 * statements are queued and sent together with the next one whose answer is needed (an insert's id, the audit
 * chain's head) or with COMMIT, so a typical write costs two or three waits. Every transaction records the
 * (entity, id) pairs it touched in change_log and notifies `tailplane_changes`, for the other replicas.
 */
import { randomUUID } from 'node:crypto';
import { StoreUnavailableError } from '../errors.ts';
import { openGroup, type Group } from '../group.ts';
import {
  apiKeyFromRow, apiKeyParams, json, loadQueries, nodeFromRow, nodeParams, oauthClientFromRow, oauthClientParams,
  oauthTokenFromRow, oauthTokenParams, preAuthKeyFromRow, preAuthKeyParams, sshCheckFromRow, sshCheckParams,
  tailnetOf, userFromRow, userParams, type Row,
} from '../rows.ts';
import type { ChangeRef, SharedLog, Store, StoreTx } from '../store.ts';
import { pgAudit, type TxSql } from './audit.ts';
import { openBridge, StatementError, type Answer, type Bridge } from './bridge.ts';
import { logStmt, notifyStmt } from './change-log.ts';
import { pgMigrations } from './migrations.ts';
import { outsideFailed, type Failure, type LogRow, type PendingAudit, type Step, type Stmt } from './protocol.ts';
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

/** Advisory lock key of schema migration. */
const migrateLock = 0x7470_0001;

/** The tables behind SharedLog's entities, with the key column and the row mapper. */
const entities: Record<string, { table: string; key: string; map: (r: Row) => unknown; text?: true }> = {
  user: { table: 'users', key: 'id', map: userFromRow },
  node: { table: 'nodes', key: 'id', map: nodeFromRow },
  pre_auth_key: { table: 'pre_auth_keys', key: 'id', map: preAuthKeyFromRow },
  api_key: { table: 'api_keys', key: 'id', map: apiKeyFromRow },
  oauth_client: { table: 'oauth_clients', key: 'id', map: oauthClientFromRow },
  oauth_token: { table: 'oauth_tokens', key: 'id', map: oauthTokenFromRow },
  setting: { table: 'settings', key: 'key', map: (r) => JSON.parse(r.value as string), text: true },
  ssh_check: { table: 'ssh_checks', key: 'id', map: sshCheckFromRow, text: true },
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
  /** A write to the replica layer's tables with its change-log rows, on a pooled connection of its own (the transaction connection may be in an open group commit). */
  const announceStmts = (entity: string, ids: readonly string[], write?: Stmt): Stmt[] => {
    const log = logStmt(ids.map((id) => ({ entity, id })), origin);
    return [{ sql: 'BEGIN' }, ...(write ? [write] : []), ...(log ? [log, notifyStmt(origin)] : []), { sql: 'COMMIT' }];
  };
  const shared: SharedLog = {
    origin,
    lastSeq: () => Number(bridge.call([{ sql: 'SELECT coalesce(max(seq), 0) AS s FROM change_log' }])[0]!.rows[0]!.s),
    since: (seq, limit) =>
      bridge.call([{ sql: 'SELECT seq, entity, entity_id AS id, origin FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2', params: [seq, limit] }], { unordered: true })[0]!
        .rows as unknown as ChangeRef[],
    read(entity, ids) {
      const e = entities[entity];
      if (!e) throw new Error(`unknown entity ${entity}`);
      // Typed as the key column is, so the lookup uses its index.
      const sql = `SELECT * FROM ${e.table} WHERE ${e.key} = ANY($1::${e.text ? 'text' : 'bigint'}[])`;
      // After our own commits posted before it (not unordered): rows newer than ours must not be read older.
      const rows = bridge.call([{ sql, params: [ids] }])[0]!.rows;
      return new Map(rows.map((r) => [String(r[e.key]), e.map(r)]));
    },
    query: (sql, params) => bridge.call([{ sql, params }])[0]!.rows,
    announce(entity, ids, write) {
      if (ids.length || write) bridge.call(announceStmts(entity, ids, write));
    },
    async announceLater(entity, ids, write) {
      if (ids.length || write) await bridge.callAsync(announceStmts(entity, ids, write));
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
    writeGrouped: (fn) => tx.grouped((t) => fn(t)),
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
    close: () => {
      tx.close();
      void bridge.close();
    },
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
 * The transaction machinery: an outermost run opens a transaction (BEGIN queued, not sent), nested runs are
 * savepoints, statements queue until an answer is needed, and the outermost commit sends the rest with the
 * change-log rows and COMMIT in one call.
 *
 * A group commit keeps one transaction open for the rest of the event-loop turn and sends its COMMIT without
 * blocking. Each write in it is a section (a savepoint of its own) that fails alone: a unique clash with
 * another replica's write, found only at COMMIT, rejects that write's promise and leaves the others to commit
 * (the worker rolls back to the section's savepoint). Soft writes (what a client reports again anyway) join
 * the open group or open one of their own, so a map request never waits for PostgreSQL; a soft write whose
 * commit fails stays in memory, as a client's report the database lost and the client makes again.
 */
function openTransactions(bridge: Bridge, origin: string) {
  let queue: Stmt[] = [];
  /** 0 outside a transaction; nesting depth inside. */
  let depth = 0;
  /** Whether the held connection has the transaction open (something was sent since BEGIN). */
  let sent = false;
  let touched = new Map<string, LogRow>();
  /** Whether a statement logged changes itself (expired tokens), so the commit notifies even with nothing touched. */
  let logged = false;
  /** The transaction's audit entries, chained by the worker as it commits. */
  let audits: PendingAudit[] = [];
  /** The open group commit, if any: its transaction is the outermost one until commitGroup sends COMMIT. */
  let group: OpenGroup | undefined;
  /** The section (write of the open group) running now. */
  let current: number | undefined;
  let nextSection = 1;
  /** The worker already rolled the current section back to its savepoint: its nested writes must not try again. */
  let rolledBack = false;
  const nodeIds = idReserve(bridge, 'nodes');

  /** A statement or audit entry of the section running now, marked as its own (the worker leaves it out if that section fails). */
  const ofSection = <T extends { section?: number }>(x: T): T => (current === undefined ? x : { ...x, section: current });
  const push = (stmt: Stmt) => queue.push(ofSection(stmt));
  const touch = (entity: string, id: string | number) => touched.set(`${current ?? ''}\0${entity}\0${id}`, { entity, id: String(id), section: current });

  /** Sends the queue plus `stmts` on the transaction's connection; returns the answers to `stmts`. */
  const call = (stmts: Stmt[]) => {
    const batch = [...queue, ...stmts.map(ofSection)];
    queue = [];
    sent = true;
    let answer: Answer;
    try {
      answer = bridge.answer(batch, { hold: true, ...(group ? { isolate: sectionSavepoint } : {}) });
    } catch (err) {
      throw storeError(err);
    }
    for (const { section, failure } of answer.failed) {
      if (section !== current) group!.failed.set(section, failure);
      else {
        rolledBack = true;
        throw storeError(new StatementError(failure));
      }
    }
    return answer.results.slice(batch.length - stmts.length);
  };
  const insert = (entity: string, table: string, params: Row) => {
    const id = call([insertStmt(table, params)])[0]!.rows[0]!.id as number;
    touch(entity, id);
    return id;
  };
  const enqueue = (entity: string, id: string | number, stmt: Stmt) => {
    push(stmt);
    touch(entity, id);
  };
  const remove = (entity: string, table: string) => (id: number) =>
    enqueue(entity, id, { sql: `DELETE FROM ${table} WHERE id = $1`, params: [id] });

  const txSql: TxSql = { call, enqueue: push, audit: (entry) => audits.push(ofSection(entry)) };

  const storeTx: StoreTx = {
    insertUser: (u) => insert('user', 'users', userParams(u)),
    updateUser: (u) => enqueue('user', u.id, updateStmt('users', u.id, userParams(u))),
    deleteUser: remove('user', 'users'),
    // Its id comes from a block reserved ahead, so the insert of a write of its own (or of a group's) waits for
    // nothing: a clash shows at the commit and fails that write. Inside another write it is sent at once, so a
    // clash throws here, where that write may catch it.
    insertNode: (n) => {
      const id = nodeIds.take();
      const stmt = insertStmt('nodes', { id, ...nodeParams(n) });
      if (depth === (current === undefined ? 1 : 2)) enqueue('node', id, stmt);
      else {
        call([stmt]);
        touch('node', id);
      }
      return id;
    },
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
      // The deleted ids are only known to the database: it logs them itself.
      push({
        sql: `WITH gone AS (DELETE FROM oauth_tokens WHERE expires_at < $1 RETURNING id)
              INSERT INTO change_log (entity, entity_id, origin) SELECT 'oauth_token', id::text, $2 FROM gone`,
        params: [now, origin],
      });
      logged = true;
    },
    putSetting: (key, value) => enqueue('setting', key, upsertStmt('settings', 'key', { key, value: json(value) })),
    putSshCheck: (c) => enqueue('ssh_check', c.id, upsertStmt('ssh_checks', 'id', sshCheckParams(c))),
    appendAudit: (draft, time) => txSql.audit({ draft, time }),
  };

  const begin = (soft: boolean) => {
    queue = [{ sql: 'BEGIN' }, ...(soft ? [{ sql: 'SET LOCAL synchronous_commit = off' }] : [])];
    touched = new Map();
    logged = false;
    audits = [];
    sent = false;
    depth = 1;
  };
  /**
   * What ends the outermost transaction: the queued statements, its audit entries, change-log rows and COMMIT,
   * without the entries of sections already known to have failed.
   */
  const commitStmts = (failed: ReadonlyMap<number, unknown> = new Map()): Step[] => {
    const kept = outsideFailed(failed);
    const entries = audits.filter(kept);
    const rows = [...touched.values()].filter(kept);
    const batch: Step[] = [...queue, ...(entries.length ? [{ audit: entries }] : []), ...(rows.length || logged ? [{ log: rows, origin, notify: logged }] : []), { sql: 'COMMIT' }];
    queue = [];
    audits = [];
    return batch;
  };
  /** Sends the open group's COMMIT; `wait` blocks until it is done (closing), otherwise the answer settles it later. */
  const commitGroup = (wait = false) => {
    const g = group;
    if (!g) return;
    group = undefined;
    const batch = commitStmts(g.failed);
    depth = 0;
    sent = false;
    const settle = ({ failed }: Answer) => {
      for (const f of failed) g.failed.set(f.section, f.failure);
      for (const [section, write] of g.writes) {
        const failure = g.failed.get(section);
        if (failure) write.reject(storeError(new StatementError(failure)));
        else write.resolve();
      }
    };
    const fail = (err: unknown) => {
      for (const write of g.writes.values()) write.reject(storeError(err));
    };
    const opts = { hold: true, release: true, isolate: sectionSavepoint };
    try {
      // On a failure the worker rolls back and drops the connection itself (nothing here is waiting to).
      if (!wait) return void bridge.callAsync(batch, opts).then(settle, fail);
      settle(bridge.answer(batch, opts));
    } catch (err) {
      bridge.abandon();
      fail(err);
    }
  };

  /** Runs fn in a savepoint of the open transaction. */
  function nested<T>(fn: (t: StoreTx, sql: TxSql) => T): T {
    const sp = `s${depth}`;
    push({ sql: `SAVEPOINT ${sp}` });
    depth++;
    const auditsBefore = audits.length;
    try {
      const result = fn(storeTx, txSql);
      push({ sql: `RELEASE SAVEPOINT ${sp}` });
      return result;
    } catch (err) {
      audits.length = auditsBefore;
      // Back to the savepoint, so an outer fn that catches this may go on; if even that fails, its commit will.
      if (!(err instanceof StoreUnavailableError) && !rolledBack) {
        try {
          call([{ sql: `ROLLBACK TO SAVEPOINT ${sp}` }]);
        } catch {}
      }
      throw err;
    } finally {
      depth--;
    }
  }

  /** Inside a write already (a section of the group, or a transaction of its own): a write is a savepoint of it. */
  const inside = () => current !== undefined || (depth > 0 && !group);

  /**
   * Runs fn as a section of the open group, opening one (soft: committed with synchronous_commit off until a
   * durable write joins it) when none is; its promise settles when the group commits.
   */
  function section<T>(fn: (t: StoreTx, sql: TxSql) => T, soft: boolean): { result: T; durable: Promise<void> } {
    if (!group) {
      // Down already: the write fails now, as a blocking one would, rather than at a commit nobody waits for.
      if (bridge.down) throw new StoreUnavailableError('PostgreSQL is unreachable (reconnecting)');
      begin(soft);
      group = { soft, writes: new Map(), failed: new Map() };
      setImmediate(commitGroup);
    } else if (group.soft && !soft) {
      push({ sql: 'SET LOCAL synchronous_commit = on' });
      group.soft = false;
    }
    const g = group;
    const k = nextSection++;
    const write = openGroup();
    g.writes.set(k, write);
    current = k;
    try {
      return { result: nested(fn), durable: write.durable };
    } catch (err) {
      // Thrown before the commit: it leaves nothing to log or settle.
      g.writes.delete(k);
      for (const [key, row] of touched) if (row.section === k) touched.delete(key);
      throw err;
    } finally {
      current = undefined;
      rolledBack = false;
    }
  }

  /** Runs fn in the transaction (opening it when outermost, as a savepoint when nested). */
  function run<T>(fn: (t: StoreTx, sql: TxSql) => T, soft: boolean): T {
    if (inside()) return nested(fn);
    // A soft write rides in the open group (or opens one); a durable one must not wait for it, so the group commits now.
    if (soft) return section(fn, true).result;
    commitGroup();
    begin(false);
    try {
      const result = fn(storeTx, txSql);
      const batch = commitStmts();
      try {
        bridge.call(batch, { hold: true, release: true });
      } catch (err) {
        // The worker ended the transaction itself (rolled back, or dropped the connection).
        sent = false;
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

  function grouped<T>(fn: (t: StoreTx) => T): { result: T; durable: Promise<void> } {
    // Inside a write: a savepoint of it, durable when it is.
    if (inside()) return { result: nested(fn), durable: current === undefined ? Promise.resolve() : group!.writes.get(current)!.durable };
    return section(fn, false);
  }
  return { run, grouped, close: () => commitGroup(true) };
}

/** The savepoint every section of a group begins with (a group's writes are savepoints at depth 1). */
const sectionSavepoint = 's1';

interface OpenGroup {
  /** Committed with synchronous_commit off: only soft writes joined it so far. */
  soft: boolean;
  /** Each write's promise, by section. */
  readonly writes: Map<number, Group>;
  /** Sections PostgreSQL refused alone (answered by a blocking call before the commit, or by the commit). */
  readonly failed: Map<number, Failure>;
}

/** How many ids a reserve takes from a table's sequence at once. */
const idBlock = 64;

/**
 * Ids taken ahead from a table's identity sequence, so an insert needs no answer from PostgreSQL. Ids a
 * replica reserved and never used are gaps, as a rolled-back insert leaves anyway; ids are never reused.
 */
function idReserve(bridge: Bridge, table: string) {
  let ids: number[] = [];
  return {
    take(): number {
      if (ids.length === 0) {
        const sql = `SELECT nextval(pg_get_serial_sequence('${table}', 'id')) AS id FROM generate_series(1, $1)`;
        try {
          ids = bridge.call([{ sql, params: [idBlock] }], { unordered: true })[0]!.rows.map((r) => Number(r.id));
        } catch (err) {
          throw storeError(err);
        }
      }
      return ids.shift()!;
    },
  };
}
