/**
 * The persistence interface of the tailnet: what the state layer needs from a database, nothing more.
 * SQLite (src/store/sqlite.ts) and PostgreSQL (src/store/postgres) implement it; both throw the errors of
 * src/store/errors.ts.
 */
import type { AuditAnchor, AuditDraft, AuditEntry } from '../audit/chain.ts';
import type { ApiKey, Node, OAuthClient, OAuthToken, PreAuthKey, SshCheck, User } from '../domain/types.ts';

/** A secret-bearing record as stored: the public record plus the hash of its secret. */
export interface Hashed<T> {
  readonly record: T;
  readonly hash: string;
}

/** Everything the store holds, loaded once at start-up into the in-memory state. */
export interface StoredTailnet {
  readonly users: User[];
  readonly nodes: Node[];
  readonly preAuthKeys: Hashed<PreAuthKey>[];
  readonly apiKeys: Hashed<ApiKey>[];
  readonly oauthClients: Hashed<OAuthClient>[];
  readonly oauthTokens: Hashed<OAuthToken>[];
  readonly settings: Record<string, unknown>;
  /** SSH checks still of use: pending, approvals that may admit sessions, and those decided within the hour. */
  readonly sshChecks: SshCheck[];
}

/** Writes inside one transaction. Insert methods return the new row id. */
export interface StoreTx {
  insertUser(u: Omit<User, 'id'>): number;
  updateUser(u: User): void;
  deleteUser(id: number): void;
  insertNode(n: Omit<Node, 'id'>): number;
  updateNode(n: Node): void;
  deleteNode(id: number): void;
  insertPreAuthKey(k: Omit<PreAuthKey, 'id'>, hash: string): number;
  updatePreAuthKey(k: PreAuthKey): void;
  /**
   * Marks a pre-auth key used only if the database still has it unused, so of several registrations racing
   * for one single-use key (in this process or another) exactly one wins; the losers get
   * StoreConflictError('pre_auth_keys.used').
   */
  usePreAuthKey(id: number): void;
  deletePreAuthKey(id: number): void;
  insertApiKey(k: Omit<ApiKey, 'id'>, hash: string): number;
  updateApiKey(k: ApiKey): void;
  deleteApiKey(id: number): void;
  insertOAuthClient(c: Omit<OAuthClient, 'id'>, hash: string): number;
  deleteOAuthClient(id: number): void;
  insertOAuthToken(t: Omit<OAuthToken, 'id'>, hash: string): number;
  /** Deletes every token that expired before `now` (RFC 3339). */
  deleteExpiredOAuthTokens(now: string): void;
  putSetting(key: string, value: unknown): void;
  /** Inserts or replaces an SSH check by its id. */
  putSshCheck(c: SshCheck): void;
  /**
   * Appends an audit entry after the newest one, chained to it (by the time the transaction commits: PostgreSQL
   * chains a transaction's entries as it ends); it commits or rolls back with the change.
   */
  appendAudit(draft: AuditDraft, time: string): void;
}

/** Filters for reading the audit log; `after` is the id cursor (entries come in id order). */
export interface AuditQuery {
  since?: string;
  until?: string;
  actor?: string;
  object?: string;
  after?: number;
  limit?: number;
}

export interface AuditStore {
  list(q: AuditQuery): AuditEntry[];
  /** Every entry in id order, for verification. */
  all(): Iterable<AuditEntry>;
  /** Where the chain starts: the last pruned entry. */
  anchor(): AuditAnchor;
  /**
   * Deletes entries older than `before` (RFC 3339) and keeps the last one's hash as the anchor, in one
   * transaction that also appends `record`'s entry (the prune is itself a change); returns how many went.
   */
  prune(before: string, record: (removed: number) => AuditDraft | null): number;
}

/** One row of PostgreSQL's change log: which record a committed transaction touched, and which replica made it. */
export interface ChangeRef {
  readonly seq: number;
  readonly entity: string;
  readonly id: string;
  readonly origin: string;
}

/**
 * The change log shared by the replicas on one PostgreSQL (the replica layer reads it). Entities: user, node,
 * pre_auth_key, api_key, oauth_client, oauth_token, setting (id = the setting's key), ssh_check, and the
 * replica layer's own (presence, replica).
 */
export interface SharedLog {
  /** This replica's id (a random UUID per start): the origin of the rows its writes append. */
  readonly origin: string;
  /** The newest seq in the change log (0 when empty). */
  lastSeq(): number;
  /** Rows with seq > `seq`, ascending, at most `limit`. */
  since(seq: number, limit: number): ChangeRef[];
  /**
   * The current rows of one entity, shaped as load() returns them (User, Node, Hashed<…>, setting value,
   * SshCheck), by id; an id absent from the map was deleted. One round trip for the lot.
   */
  read(entity: string, ids: readonly string[]): Map<string, unknown>;
  /** Runs one statement for the replica layer's own tables (presence, replicas); returns its rows. */
  query(sql: string, params?: unknown[]): Record<string, unknown>[];
  /**
   * Appends change-log rows for `ids` and notifies the replicas, for a write to the replica layer's tables:
   * `write` (when given) runs in the same transaction, so the whole is one round trip.
   */
  announce(entity: string, ids: readonly string[], write?: { sql: string; params?: unknown[] }): void;
  /** The same without waiting for the answer (a burst of presence changes); its promise settles with it. */
  announceLater(entity: string, ids: readonly string[], write?: { sql: string; params?: unknown[] }): Promise<void>;
}

export interface Store {
  load(): StoredTailnet;
  /**
   * Runs fn in one transaction: all of its writes land, or none do. A `soft` write (state clients report
   * again on every reconnect) spares the disk flush: it may be lost with the machine's power (the next durable
   * write makes it durable too). It survives a crash of the process once committed: on SQLite at once, or with
   * the group commit open then, at the end of the event-loop turn; on PostgreSQL always at the end of the turn
   * (it never waits for the database), and a soft write whose commit fails stays in memory only.
   */
  write<T>(fn: (tx: StoreTx) => T, opts?: { soft?: boolean }): T;
  /** Runs fn in one outer transaction: every `write` inside it commits with it, or none does (a write inside is durable). */
  transaction<T>(fn: () => T): T;
  /**
   * Group commit, for bursts of writes that would each wait for their own flush (registrations): runs fn in a
   * shared transaction, as a savepoint (a throw undoes fn's writes only), and returns at once; the shared
   * transaction commits after the current turn of the event loop, with every grouped write of that turn, and
   * `durable` settles then. On PostgreSQL a write the database refuses only then (a unique clash, its insert
   * having waited for nothing) rejects its own `durable`; the others commit. A durable `write` or a
   * `transaction` commits the open group first, so order holds.
   */
  writeGrouped<T>(fn: (tx: StoreTx) => T): { result: T; durable: Promise<void> };
  /** True when the database answers a trivial query. */
  healthy(): boolean;
  /**
   * Copies the database to `path` while it stays in use: the copy is consistent as of its completion (writes
   * made meanwhile are carried into it).
   */
  backup(path: string): Promise<void>;
  readonly audit: AuditStore;
  /** The change log shared between replicas: PostgreSQL only, undefined for SQLite. */
  readonly shared?: SharedLog;
  close(): void;
}
