/**
 * The server's limits on what one client may cost it: how long a connection may take to say something, how
 * many connections and pending logins one source may hold, how fast it may fail to authenticate. README's
 * "Security notes" lists the defaults.
 */
import type { Server } from 'node:net';
import type { GuardLogger } from './http.ts';

export interface Limits {
  /** Time to send a request's headers; the Noise handshake travels in the upgrade request's headers. */
  readonly headersMs: number;
  /** Time to send a whole request, body included (HTTP and each request over Noise). */
  readonly requestMs: number;
  /** An HTTP connection, or a Noise connection with no request open, is closed after this long idle. */
  readonly idleMs: number;
  /** A Noise record that has started arriving must be complete within this. */
  readonly recordMs: number;
  /** Open TCP connections per source address. */
  readonly connectionsPerSource: number;
  /** Interactive logins waiting for an admin, in all. */
  readonly pendingLogins: number;
  /** Interactive logins one source address may start per minute. */
  readonly pendingLoginsPerSourcePerMinute: number;
  /** Failed authentications one source address may make per minute before it is refused (429) for the rest of it. */
  readonly authFailuresPerSourcePerMinute: number;
  /** Unread map-stream bytes a client may leave queued, at least (more for large maps: see control/map.ts). */
  readonly mapBacklogBytes: number;
}

export const defaultLimits: Limits = {
  headersMs: 10_000,
  requestMs: 30_000,
  idleMs: 120_000,
  recordMs: 30_000,
  connectionsPerSource: 256,
  pendingLogins: 1000,
  pendingLoginsPerSourcePerMinute: 30,
  authFailuresPerSourcePerMinute: 10,
  mapBacklogBytes: 512 << 10,
};

/** Refuses (closes at once) a source's TCP connections beyond `perSource` open ones; logs once per excess. */
export function capConnectionsPerSource(server: Server, perSource: number, log: GuardLogger): void {
  const open = new Map<string, number>();
  const warned = new Set<string>();
  server.on('connection', (socket) => {
    const source = socket.remoteAddress ?? '';
    const count = (open.get(source) ?? 0) + 1;
    if (count > perSource) {
      if (!warned.has(source)) log.warn({ source, limit: perSource }, 'too many connections from one source: refusing more');
      warned.add(source);
      socket.destroy();
      return;
    }
    open.set(source, count);
    socket.once('close', () => {
      const left = open.get(source)! - 1;
      if (left > 0) open.set(source, left);
      else open.delete(source);
      warned.delete(source);
    });
  });
}

/**
 * Counts events per source in fixed one-minute windows: `hit` records one and says whether the source is
 * still within `perMinute`. Old windows are dropped as they are met, so memory is bounded by active sources.
 */
export function createRateCounter(perMinute: number, now: () => number = Date.now) {
  const windows = new Map<string, { start: number; count: number }>();
  const current = (source: string) => {
    const t = now();
    let w = windows.get(source);
    if (!w || t - w.start >= 60_000) {
      if (windows.size > 10_000) for (const [k, v] of windows) if (t - v.start >= 60_000) windows.delete(k);
      w = { start: t, count: 0 };
      windows.set(source, w);
    }
    return w;
  };
  return {
    /** Records one event; false when the source has now gone over its budget for this minute. */
    hit(source: string): boolean {
      return ++current(source).count <= perMinute;
    },
    /** True when the source has used up its budget for this minute. */
    exhausted(source: string): boolean {
      return current(source).count >= perMinute;
    },
    /** Seconds until the source's window ends. */
    retryAfter(source: string): number {
      return Math.max(1, Math.ceil((current(source).start + 60_000 - now()) / 1000));
    },
  };
}
