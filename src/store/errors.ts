/**
 * Errors a store throws that the layers above treat specially: a database that cannot be reached (HTTP 503,
 * nothing written), a uniqueness or single-use conflict another writer won (state retries or refuses), and the
 * refusals of a backup, restore or migration the user fixes (the CLI prints them without a stack trace). They
 * live apart from the stores so the CLI can tell them without loading SQLite's or PostgreSQL's drivers.
 */

/** The database did not answer in time or the connection is down; the write did not happen. */
export class StoreUnavailableError extends Error {
  constructor(reason: string) {
    super(`store unavailable: ${reason}`);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * A write lost a race on a unique value or a single-use row: `constraint` names it as `table.column`
 * (e.g. `nodes.ipv4`, `pre_auth_keys.used`), the same for SQLite and PostgreSQL.
 */
export class StoreConflictError extends Error {
  constructor(readonly constraint: string) {
    super(`conflict on ${constraint}`);
    this.name = 'StoreConflictError';
  }
}

/** A backup or restore refused: the file is missing, damaged, not a tailplane database, or in use. */
export class BackupError extends Error {}

/** A migration from SQLite to PostgreSQL refused: the source or the target is not fit for it. */
export class MigrateError extends Error {}
