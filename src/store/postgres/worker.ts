/**
 * The PostgreSQL bridge's worker thread: owns the node-postgres pool, runs the statement lists the main thread
 * posts (on a held transaction connection or any pooled one), answers on the port and bumps the shared signal.
 * While the store is marked down it probes the server once a second and clears the mark when it answers.
 */
import { workerData as data } from 'node:worker_threads';
import pg from 'pg';
import { appendPending } from './audit.ts';
import { logStmt, notifyStmt } from './change-log.ts';
import { outsideFailed, slot, type Abandon, type Failure, type Request, type Response, type Step, type WorkerData } from './protocol.ts';

// Counts and sequence numbers (int8) as numbers: they stay far below 2^53.
pg.types.setTypeParser(20, Number);

const { url, poolSize, timeoutMs, ssl, shared, port } = data as WorkerData;
const state = new Int32Array(shared);
const pool = new pg.Pool({
  connectionString: url,
  max: poolSize,
  ssl: ssl || undefined,
  connectionTimeoutMillis: timeoutMs,
  query_timeout: timeoutMs,
  idleTimeoutMillis: 30_000,
});
// An idle connection that dies (server restart) is dropped by the pool; without a listener it would crash us.
pool.on('error', () => {});
// So would one that dies while checked out between requests (an open group commit): its next query fails instead.
pool.on('connect', (client) => client.on('error', () => {}));

/** The connection of the open transaction, if any. */
let held: pg.PoolClient | undefined;

/** SQLSTATE classes that mean the server or connection is gone rather than the statement refused. */
const unavailableCodes = /^(08|57P0[1-3]|53300|53400)/;

function failure(err: unknown): Failure {
  const e = err as { message?: string; code?: string; constraint?: string; table?: string };
  const code = typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
  if (err instanceof Refusal) return { message: err.message, code, constraint: e.constraint, unavailable: false };
  // Without a SQLSTATE it is the socket (refused, reset, timed out), unless it is our check or a bad value.
  const refused = err instanceof Refusal || err instanceof TypeError || err instanceof RangeError;
  const unavailable = code ? unavailableCodes.test(code) : !refused;
  return { message: e.message ?? String(err), code, constraint: e.constraint, table: e.table, unavailable };
}

/** A check of ours that failed (e.g. an update matched no row): the statement was refused, the server is fine. */
class Refusal extends Error {}

function respond(r: Response): void {
  port.postMessage(r);
  Atomics.add(state, slot.signal, 1);
  Atomics.notify(state, slot.signal);
}

/** Gives the transaction connection back to the pool, or destroys it when `err` says it is broken. */
function drop(client: pg.PoolClient | undefined, err?: Error): void {
  if (client === held) held = undefined;
  client?.release(err);
}

async function run(req: Request): Promise<void> {
  let client: pg.PoolClient | undefined;
  let index = 0;
  /** Sections of an isolating request that were refused, and why. */
  const failed = new Map<number, Failure>();
  try {
    client = req.hold ? (held ??= await pool.connect()) : await pool.connect();
    const c = client;
    const results: { rows: Record<string, unknown>[]; rowCount: number }[] = [];
    for (const s of req.stmts) {
      const section = 'sql' in s ? s.section : undefined;
      if (section !== undefined && failed.has(section)) {
        results.push({ rows: [], rowCount: 0 });
        index++;
        continue;
      }
      try {
        results.push(await runStep(c, s, failed));
      } catch (err) {
        const f = failure(err);
        if (section === undefined || req.isolate === undefined || f.unavailable) throw err;
        // This write alone is refused (a unique clash with another replica's): the group goes on without it.
        await c.query(`ROLLBACK TO SAVEPOINT ${req.isolate}`);
        failed.set(section, f);
        results.push({ rows: [], rowCount: 0 });
      }
      index++;
    }
    if (!req.hold) client.release();
    else if (req.release) drop(client);
    const sections = [...failed].map(([section, failure]) => ({ section, failure }));
    respond({ id: req.id, ok: true, results, ...(sections.length ? { failed: sections } : {}) });
  } catch (err) {
    const f = failure(err);
    if (f.unavailable) {
      Atomics.store(state, slot.down, 1);
      drop(client, err as Error); // a broken connection is destroyed, not returned to the pool
    } else if (!req.hold) client?.release(err as Error); // it may be inside a transaction the failure left open
    else if (req.release && client) {
      // The request was to end the transaction: end it here, before any request queued behind it runs.
      await client.query('ROLLBACK').catch(() => {});
      drop(client);
    }
    respond({ id: req.id, ok: false, failure: f, index });
  }
}

/** Runs one step; audit entries and change-log rows of the `failed` sections are left out. */
async function runStep(client: pg.PoolClient, s: Step, failed: ReadonlyMap<number, Failure>): Promise<{ rows: Record<string, unknown>[]; rowCount: number }> {
  const kept = outsideFailed(failed);
  if ('audit' in s) {
    const entries = s.audit.filter(kept);
    if (entries.length) await appendPending((text, values) => client.query({ text, values }), entries);
    return { rows: [], rowCount: entries.length };
  }
  if ('log' in s) {
    const rows = s.log.filter(kept);
    const insert = logStmt(rows, s.origin);
    if (insert) await client.query({ text: insert.sql, values: insert.params as unknown[] });
    if (insert || s.notify) {
      const notify = notifyStmt(s.origin);
      await client.query({ text: notify.sql, values: notify.params as unknown[] });
    }
    return { rows: [], rowCount: rows.length };
  }
  const r = await client.query({ text: s.sql, values: s.params as unknown[] | undefined });
  if (s.expectOne && r.rowCount !== 1) throw new Refusal(`${s.expectOne} not found`);
  if (s.conflict && r.rowCount !== 1) throw Object.assign(new Refusal(`conflict on ${s.conflict}`), { code: 'TPCON', constraint: s.conflict });
  return { rows: r.rows, rowCount: r.rowCount ?? 0 };
}

// Messages run one after another (the main thread waits for each answer, except after an abandon), but for
// unordered reads, which must not wait behind group commits posted without waiting.
let queue = Promise.resolve();
port.on('message', (m: Request | Abandon) => {
  if ('abandon' in m) {
    // The main thread gave up waiting: destroying the connection rolls back whatever it was doing.
    const client = held;
    held = undefined;
    client?.release(new Error('abandoned after a timeout'));
    return;
  }
  if (m.unordered) void run(m);
  else queue = queue.then(() => run(m));
});

let probing = false;
setInterval(() => {
  if (probing || Atomics.load(state, slot.down) === 0) return;
  probing = true;
  pool
    .query('SELECT 1')
    .then(() => Atomics.store(state, slot.down, 0))
    .catch(() => {})
    .finally(() => (probing = false));
}, 1000);

Atomics.store(state, slot.ready, 1);
Atomics.add(state, slot.signal, 1);
Atomics.notify(state, slot.signal);
