/**
 * The admin console at /admin, on the same listener as the API: server-rendered pages (src/console/pages) with a
 * few ES modules for progressive enhancement, a login that trades an API key for a server-side session, a CSRF
 * token on every state-changing request, a strict Content-Security-Policy (no inline script or style), and the
 * role checks of src/auth/roles.ts. Pages call the same state functions as the admin API v1 routes.
 */
import { identify } from '../audit/context.ts';
import { readFileSync, readdirSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiKey } from '../domain/types.ts';
import type { Role } from '../domain/roles.ts';
import type { PolicyChecker } from '../admin/policy-checker.ts';
import type { CompiledPolicy } from '../policy/index.ts';
import { forbidden, mayWrite, type Area } from '../auth/roles.ts';
import { StateError } from '../state/errors.ts';
import { StoreUnavailableError } from '../store/errors.ts';
import type { Tailnet } from '../state/tailnet.ts';
import { html, type Html } from './html.ts';
import { layout } from './layout.ts';
import { cookie, createSessions, loginCookie, newToken, parseCookies, sameToken, sessionCookie, type Session, type Sessions } from './session.ts';
import { loginPages } from './pages/login.ts';
import { machinePages } from './pages/machines.ts';
import { policyPages } from './pages/acls.ts';
import { userPages } from './pages/users.ts';
import { keyPages } from './pages/keys.ts';
import { dnsPages } from './pages/dns.ts';
import { routePages } from './pages/routes.ts';
import { auditPages } from './pages/audit.ts';
import { reachPages } from './pages/reach.ts';
import { sshPages } from './pages/ssh.ts';
import { eventStreams } from './events.ts';

export interface ConsoleDeps {
  tailnet: Tailnet;
  policy: PolicyChecker;
  /** The live policy as the control plane compiled it (src/state/policy-view.ts): what the clients enforce. */
  livePolicy: () => CompiledPolicy;
  primaryRoutes: () => ReadonlyMap<string, number>;
  /** The URL clients use as --login-server. */
  serverUrl: () => string;
  /** Session lifetimes; defaults: 1 h idle, 12 h absolute. */
  sessionIdleMs?: number;
  sessionMaxAgeMs?: number;
  /** Shared with the OIDC callback, which opens console sessions too; made here when absent. */
  sessions?: Sessions;
  /** Offer "log in with single sign-on" (OIDC is configured). */
  oidcLogin?: boolean;
}

/** What a console page knows about the request: the session, the API key behind it (none for OIDC), the role. */
export interface Ctx {
  session: Session;
  key?: ApiKey;
  role: Role;
  may(area: Area): boolean;
}

/** A parsed form: repeated fields become lists. */
export type Form = Record<string, string | string[]>;

/** The console's shared pieces, handed to every page module. */
export interface Console {
  deps: ConsoleDeps;
  sessions: Sessions;
  ctx(req: FastifyRequest): Ctx;
  /** Sends a full page. */
  page(reply: FastifyReply, req: FastifyRequest, title: string, body: Html, status?: number): FastifyReply;
  /** The 403 page for a role that may not change `area`. */
  refuse(reply: FastifyReply, req: FastifyRequest, area: Area): FastifyReply;
  /**
   * A state-changing POST: refused with 403 unless the role may change `area`; a StateError becomes the next
   * page's error message; success redirects (303) to what `run` returns, with its message.
   */
  action<B extends Form>(
    url: string,
    area: Area,
    run: (req: FastifyRequest<{ Body: B; Params: Record<string, string> }>, ctx: Ctx) => { to: string; message: string },
    back: (req: FastifyRequest<{ Params: Record<string, string> }>) => string,
  ): void;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route is reachable without a session (login, static files). */
    anonymous?: boolean;
  }
  interface FastifyRequest {
    consoleCtx?: Ctx;
  }
}

const staticDir = new URL('./static/', import.meta.url);
const staticTypes: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

/** No script, style, font or image from anywhere but this server; no inline script or style; no framing. */
const csp = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Console sessions with the configured lifetimes (defaults: 1 h idle, 12 h absolute). */
export const consoleSessions = (deps: Pick<ConsoleDeps, 'sessionIdleMs' | 'sessionMaxAgeMs'>) =>
  createSessions({ idleMs: deps.sessionIdleMs ?? 3_600_000, maxAgeMs: deps.sessionMaxAgeMs ?? 12 * 3_600_000 });

export async function consolePlugin(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  const sessions = deps.sessions ?? consoleSessions(deps);
  const liveKey = (id: number) =>
    deps.tailnet.apiKeys.list().find((k) => k.id === id && (k.expiration === null || Date.parse(k.expiration) > Date.now()));

  app.addHook('onRoute', (route) => {
    route.config = { ...(route.config as object), session: true };
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    const form: Form = {};
    for (const [k, v] of new URLSearchParams(body as string)) {
      const prev = form[k];
      form[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
    }
    done(null, form);
  });
  app.addHook('onRequest', async (_req, reply) => {
    reply.header('content-security-policy', csp);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('cache-control', 'no-store');
  });
  // Session and CSRF run before every handler but the anonymous ones (login, static files).
  app.addHook('preHandler', async (req, reply) => {
    if (req.routeOptions.config.anonymous) return;
    const session = sessions.get(parseCookies(req.headers.cookie).get(sessionCookie), (id) => liveKey(id) !== undefined);
    if (!session) {
      if (req.method === 'GET') return reply.redirect(`/admin/login?next=${encodeURIComponent(req.url)}`, 303);
      return reply.code(401).type('text/plain; charset=utf-8').send('not logged in (or the session expired): log in again');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const sent = (req.body as Form | undefined)?._csrf ?? req.headers['x-csrf-token'];
      if (!sameToken(typeof sent === 'string' ? sent : undefined, session.csrf)) {
        return reply.code(403).type('text/plain; charset=utf-8').send('refused: missing or wrong CSRF token (reload the page and try again)');
      }
    }
    const key = session.apiKeyId === null ? undefined : liveKey(session.apiKeyId)!;
    const role = key?.role ?? session.oidc!.role;
    identify(key ? `apikey:${key.prefix}` : `user:${session.oidc!.user}`);
    req.consoleCtx = { session, key, role, may: (area) => mayWrite(role, area) };
  });

  const secure = (req: FastifyRequest) => req.protocol === 'https' || deps.serverUrl().startsWith('https:');
  const con: Console = {
    deps,
    sessions,
    ctx: (req) => req.consoleCtx!,
    page(reply, req, title, body, status = 200) {
      const ctx = req.consoleCtx;
      const flash = ctx?.session.flash;
      if (ctx) ctx.session.flash = undefined;
      return reply.code(status).type('text/html; charset=utf-8').send(layout({ title, body, ctx, flash, path: req.url }).text);
    },
    refuse: (reply, req, area) =>
      con.page(reply, req, 'Not allowed', html`<p role="alert" class="flash error">${forbidden(con.ctx(req).role, area)}</p>`, 403),
    action(url, area, run, back) {
      app.post(url, async (req, reply) => {
        const ctx = con.ctx(req);
        if (!ctx.may(area)) return con.refuse(reply, req, area);
        try {
          const { to, message } = run(req as never, ctx);
          ctx.session.flash = { kind: 'ok', text: message };
          return reply.redirect(to, 303);
        } catch (err) {
          if (!(err instanceof StateError || err instanceof StoreUnavailableError)) throw err;
          ctx.session.flash = { kind: 'error', text: err.message };
          return reply.redirect(back(req as never), 303);
        }
      });
    },
  };

  const files = new Map(
    readdirSync(staticDir)
      .filter((f) => staticTypes[f.slice(f.lastIndexOf('.'))])
      .map((f) => [f, readFileSync(new URL(f, staticDir))]),
  );
  app.get<{ Params: { file: string } }>('/static/:file', { config: { anonymous: true } }, async (req, reply) => {
    const body = files.get(req.params.file);
    if (!body) return reply.code(404).type('text/plain').send('not found');
    const name = req.params.file;
    return reply.type(staticTypes[name.slice(name.lastIndexOf('.'))]!).header('cache-control', 'no-cache').send(body);
  });

  loginPages(app, con, {
    setSession: (reply, req, s) => reply.header('set-cookie', cookie(sessionCookie, s ? s.id : '', s ? sessions.cookieMaxAge() : 0, secure(req))),
    loginToken: (reply, req) => {
      const token = newToken();
      reply.header('set-cookie', cookie(loginCookie, token, 600, secure(req)));
      return token;
    },
    clearLoginToken: (reply, req) => void reply.header('set-cookie', cookie(loginCookie, '', 0, secure(req))),
  });
  app.get('/', async (_req, reply) => reply.redirect('/admin/machines', 303));
  eventStreams(app, deps.tailnet);
  machinePages(app, con);
  policyPages(app, con);
  reachPages(app, con);
  userPages(app, con);
  keyPages(app, con);
  dnsPages(app, con);
  routePages(app, con);
  sshPages(app, con);
  auditPages(app, con);
}
