/**
 * The messages between the PostgreSQL store (main thread) and its bridge worker, and the layout of the shared
 * memory they signal through.
 */
import type { MessagePort } from 'node:worker_threads';
import type { AuditDraft } from '../../audit/chain.ts';

/**
 * One statement. Unless exactly one row was affected, `expectOne` makes it fail as "<expectOne> not found"
 * (an update by id) and `conflict` as a conflict on that constraint (SQLSTATE TPCON: a conditional update lost).
 */
export interface Stmt {
  readonly sql: string;
  readonly params?: readonly unknown[];
  readonly expectOne?: string;
  readonly conflict?: string;
  /** The write of a group commit this statement belongs to (see Request.isolate). */
  readonly section?: number;
}

/** An audit entry waiting to be chained: the worker seals it after the newest entry when the transaction ends. */
export interface PendingAudit {
  readonly draft: AuditDraft;
  readonly time: string;
  /** The write of a group commit it belongs to: left out when that write fails. */
  readonly section?: number;
}

/** The audit entries of a transaction, appended by the worker (src/store/postgres/audit.ts, appendPending). */
export interface AuditStep {
  readonly audit: readonly PendingAudit[];
}

/** One change-log row: what a transaction touched (see store.ts logStmts), from a write of a group or not. */
export interface LogRow {
  readonly entity: string;
  readonly id: string;
  readonly section?: number;
}

/** The change-log rows of a transaction, written by the worker without those of failed writes, then a notify. */
export interface LogStep {
  readonly log: readonly LogRow[];
  readonly origin: string;
  /** Notify even when no row is left (a statement of the transaction logged rows itself). */
  readonly notify: boolean;
}

export type Step = Stmt | AuditStep | LogStep;

/**
 * Runs `stmts` in order. `hold` runs them on the worker's transaction connection (checked out of the pool on
 * first use and kept until `release`); otherwise on any pooled connection.
 */
export interface Request {
  readonly id: number;
  readonly stmts: readonly Step[];
  readonly hold: boolean;
  readonly release: boolean;
  /**
   * A group commit's writes fail alone: a statement of section k that PostgreSQL refuses rolls back to the
   * savepoint `isolate` that section began with, the rest of the section is skipped, and the others go on.
   */
  readonly isolate?: string;
  /**
   * Runs at once on a pooled connection, not after the requests before it: the change log's refs (a seq not
   * committed yet is read again later) and nextval, which no write of ours needs to precede.
   */
  readonly unordered?: boolean;
}

/** What went wrong, flattened for the trip between threads. */
export interface Failure {
  readonly message: string;
  /** SQLSTATE when PostgreSQL answered. */
  readonly code?: string;
  readonly constraint?: string;
  readonly table?: string;
  /** The connection or server is gone (not a refusal of the statement): the store goes down until a probe succeeds. */
  readonly unavailable: boolean;
}

export type Response =
  | { readonly id: number; readonly ok: true; readonly results: { rows: Record<string, unknown>[]; rowCount: number }[]; readonly failed?: readonly SectionFailure[] }
  | { readonly id: number; readonly ok: false; readonly failure: Failure; readonly index: number };

/** A write of an isolating request that was refused (the rest committed). */
export interface SectionFailure {
  readonly section: number;
  readonly failure: Failure;
}

/** A message the main thread sends without waiting: drop the transaction connection (a call timed out). */
export interface Abandon {
  readonly id: 0;
  readonly abandon: true;
}

/** Int32 slots of the shared buffer. */
export const slot = {
  /** Bumped by the worker after each response, so the main thread wakes from Atomics.wait. */
  signal: 0,
  /** 1 while the store is down: calls fail at once; the worker's probe sets it back to 0. */
  down: 1,
  /** 1 once the worker is up and listening. */
  ready: 2,
} as const;

export interface WorkerData {
  readonly url: string;
  readonly poolSize: number;
  readonly timeoutMs: number;
  readonly ssl: false | { rejectUnauthorized: boolean; ca?: string };
  readonly shared: SharedArrayBuffer;
  readonly port: MessagePort;
}

/** Whether a statement, audit entry or change-log row belongs to no section, or to one that did not fail. */
export const outsideFailed = (failed: ReadonlyMap<number, unknown>) => (x: { readonly section?: number }) => x.section === undefined || !failed.has(x.section);
