/**
 * Interactive logins waiting for an admin: `tailscale up` without an auth key gets an auth URL with an id,
 * its follow-up request waits here, and `tailplane nodes register --auth-id ID --user U` completes it.
 */
import { randomBytes } from 'node:crypto';
import type { Node, User } from '../domain/types.ts';
import { conflict, invalid, notFound } from './errors.ts';
import type { Tailnet } from './tailnet.ts';

export interface PendingLogin {
  readonly authId: string;
  readonly machineKey: string;
  readonly nodeKey: string;
  readonly hostname: string;
  readonly hostinfo: Record<string, unknown>;
  readonly ephemeral: boolean;
  readonly createdAt: number;
}

interface Entry {
  login: PendingLogin;
  /** The admin's decision once made; waiters read it. */
  outcome?: { userId: number };
  waiters: Set<(outcome: { userId: number } | null) => void>;
}

/** `max` bounds the logins waiting at once: each is kept in memory until approved or expired. */
export function createRegistrations(opts: { ttlMs: number; max?: number; now?: () => number }) {
  const now = opts.now ?? Date.now;
  const pending = new Map<string, Entry>();
  const expired = (e: Entry) => now() - e.login.createdAt > opts.ttlMs;
  const sweep = () => {
    for (const [id, e] of pending) {
      if (!expired(e)) continue;
      pending.delete(id);
      for (const w of e.waiters) w(null);
    }
  };
  return {
    start(login: Omit<PendingLogin, 'authId' | 'createdAt'>): PendingLogin {
      sweep();
      if (opts.max !== undefined && pending.size >= opts.max) {
        throw conflict(`${pending.size} logins are already waiting for an admin: try again when they are approved or expired`);
      }
      const entry: Entry = {
        login: { ...login, authId: randomBytes(12).toString('base64url'), createdAt: now() },
        waiters: new Set(),
      };
      pending.set(entry.login.authId, entry);
      return entry.login;
    },
    get(authId: string): PendingLogin | undefined {
      const e = pending.get(authId);
      return e && !expired(e) ? e.login : undefined;
    },
    list(): PendingLogin[] {
      sweep();
      return [...pending.values()].map((e) => e.login);
    },
    /**
     * Waits for the admin's decision: resolves with the approving user, or null when the login expired or
     * `signal` aborted (the client went away).
     */
    wait(authId: string, signal?: AbortSignal): Promise<{ userId: number } | null> {
      const e = pending.get(authId);
      if (!e || expired(e)) return Promise.resolve(null);
      if (e.outcome) return Promise.resolve(e.outcome);
      return new Promise((resolve) => {
        const done = (o: { userId: number } | null) => {
          e.waiters.delete(done);
          signal?.removeEventListener('abort', onAbort);
          resolve(o);
        };
        const onAbort = () => done(null);
        e.waiters.add(done);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    /** Records the admin's approval (the caller has registered the node) and wakes the waiting client. */
    approve(authId: string, userId: number): PendingLogin {
      const e = pending.get(authId);
      if (!e || expired(e)) throw notFound(`no pending login with auth id "${authId}" (it may have expired)`);
      e.outcome = { userId };
      for (const w of e.waiters) w(e.outcome);
      return e.login;
    },
    /** Forgets a completed login. */
    finish(authId: string): void {
      pending.delete(authId);
    },
  };
}

export type Registrations = ReturnType<typeof createRegistrations>;

/**
 * Registers a waiting machine to `owner` (an admin's `nodes register`, or the user's own OIDC login) and wakes its
 * client. With --advertise-tags the owner must own every requested tag; the node is then owned by the tags.
 * `expiry` (an RFC 3339 time) overrides the default key expiry, set before the client hears of its node.
 */
export function completeLogin(t: Tailnet, registrations: Registrations, authId: string, owner: User, expiry?: string): Node {
  const login = registrations.get(authId);
  if (!login) throw notFound(`no pending login with auth id "${authId}" (it may have expired)`);
  const requested = [...new Set((login.hostinfo.RequestTags as string[] | undefined) ?? [])].sort();
  const refused = t.tagOwners.refusal(requested, owner.name);
  if (refused) throw invalid(`requested tags [${requested.join(', ')}] are invalid or not permitted: ${refused}`);
  const node = t.nodes.register({
    machineKey: login.machineKey,
    nodeKey: login.nodeKey,
    hostname: login.hostname,
    hostinfo: login.hostinfo,
    userId: owner.id,
    tags: requested,
    ephemeral: login.ephemeral,
    method: 'interactive',
  });
  const result = expiry === undefined || requested.length > 0 ? node : t.nodes.setExpiry(node.id, expiry);
  registrations.approve(authId, owner.id);
  return result;
}
