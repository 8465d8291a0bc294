/**
 * Errors the state layer raises for a request it refuses; the admin API maps each kind to an HTTP status.
 */
import { StoreUnavailableError } from '../store/errors.ts';
export type StateErrorKind = 'invalid' | 'not_found' | 'conflict' | 'unauthorized';

export class StateError extends Error {
  constructor(
    readonly kind: StateErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export const invalid = (msg: string) => new StateError('invalid', msg);
export const notFound = (msg: string) => new StateError('not_found', msg);
export const conflict = (msg: string) => new StateError('conflict', msg);

/**
 * Runs a bookkeeping write (a last-seen time) that must not fail what it records while the database is away:
 * undefined then, and the caller carries on without it.
 */
export function unlessStoreAway<T>(write: () => T): T | undefined {
  try {
    return write();
  } catch (err) {
    if (err instanceof StoreUnavailableError) return undefined;
    throw err;
  }
}
