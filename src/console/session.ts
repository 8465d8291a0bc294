/**
 * Console sessions: an admin API key typed once at login is exchanged for a random session id kept only on the
 * server (the browser holds an httpOnly, SameSite=Strict cookie, never the key). Each session has a CSRF token that
 * every state-changing request must echo, an idle and an absolute lifetime, and ends as soon as its key is
 * revoked or expires; its role is read from the key on every request, so a changed key takes effect at once.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKey } from '../domain/types.ts';
import type { Role } from '../domain/roles.ts';

export interface Session {
  readonly id: string;
  readonly csrf: string;
  /** The API key logged in with, or null for an OIDC login. */
  readonly apiKeyId: number | null;
  /** An OIDC login: who it is and the role the config maps their IdP groups to. */
  readonly oidc?: { readonly user: string; readonly role: Role };
  readonly createdAt: number;
  lastUsed: number;
  /** A one-shot message for the next page (an action's result or error). */
  flash?: { kind: 'ok' | 'error'; text: string };
}

export interface SessionOptions {
  /** A session unused for this long ends. */
  idleMs: number;
  /** A session ends this long after login, used or not. */
  maxAgeMs: number;
  now?: () => number;
}

export const sessionCookie = 'tailplane_session';
/** The pre-login cookie whose value the login form must echo (double-submit: logins cannot be forged either). */
export const loginCookie = 'tailplane_login';

export const newToken = () => randomBytes(32).toString('base64url');

/** Constant-time comparison of two tokens (either may be missing). */
export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

export function createSessions(opts: SessionOptions) {
  const now = opts.now ?? Date.now;
  const sessions = new Map<string, Session>();
  const expired = (s: Session, t: number) => t - s.lastUsed > opts.idleMs || t - s.createdAt > opts.maxAgeMs;
  const add = (who: Pick<Session, 'apiKeyId' | 'oidc'>): Session => {
    const t = now();
    for (const [id, s] of sessions) if (expired(s, t)) sessions.delete(id);
    const session: Session = { id: newToken(), csrf: newToken(), ...who, createdAt: t, lastUsed: t };
    sessions.set(session.id, session);
    return session;
  };
  return {
    create(key: ApiKey): Session {
      return add({ apiKeyId: key.id });
    },
    createForOidc(user: string, role: Role): Session {
      return add({ apiKeyId: null, oidc: { user, role } });
    },
    /** The live session for this id whose key still `valid`ates, touched; else undefined (and forgotten). */
    get(id: string | undefined, valid: (apiKeyId: number) => boolean): Session | undefined {
      const s = id === undefined ? undefined : sessions.get(id);
      if (!s) return undefined;
      const t = now();
      if (expired(s, t) || (s.apiKeyId !== null && !valid(s.apiKeyId))) {
        sessions.delete(s.id);
        return undefined;
      }
      s.lastUsed = t;
      return s;
    },
    end(id: string): void {
      sessions.delete(id);
    },
    /** Seconds the cookie should live: the absolute lifetime. */
    cookieMaxAge: () => Math.floor(opts.maxAgeMs / 1000),
  };
}

export type Sessions = ReturnType<typeof createSessions>;

/** name=value pairs of a Cookie header. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

/** A Set-Cookie value scoped to the console; `secure` when the server is reached over https. */
export function cookie(name: string, value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${name}=${value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}
