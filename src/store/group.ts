/**
 * The bookkeeping of a group commit (Store.writeGrouped): one promise for every write in the group, settled
 * when the group's transaction commits or fails.
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
