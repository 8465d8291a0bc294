/**
 * Errors the state layer raises for a request it refuses; the admin API maps each kind to an HTTP status.
 */
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
