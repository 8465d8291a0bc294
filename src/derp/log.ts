/** The logger shape the DERP and STUN servers accept: a subset of pino's, so fastify's logger fits. */
export interface DerpLogger {
  debug?(fields: object, msg: string): void;
  info?(fields: object, msg: string): void;
  warn?(fields: object, msg: string): void;
}

/** Binds every level, filling the missing ones with no-ops. */
export function levels(logger: DerpLogger | undefined) {
  const noop = (): void => {};
  return {
    debug: logger?.debug?.bind(logger) ?? noop,
    info: logger?.info?.bind(logger) ?? noop,
    warn: logger?.warn?.bind(logger) ?? noop,
  };
}

export type Log = ReturnType<typeof levels>;
