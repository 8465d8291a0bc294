/**
 * The bookkeeping of a group commit (Store.writeGrouped): a promise settled when the group's transaction
 * commits or fails, shared by every write of the group (SQLite) or one per write (PostgreSQL, whose writes
 * may fail alone).
 */
export interface Group {
  readonly durable: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

export function openGroup(): Group {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const durable = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  // A writer that does not wait for durability must not turn a failed commit into an unhandled rejection.
  durable.catch(() => {});
  return { durable, resolve, reject };
}
