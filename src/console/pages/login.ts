/** Login (an admin API key, checked like the API checks it, traded for a session cookie) and logout. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { html } from '../html.ts';
import type { Console, Form } from '../plugin.ts';
import { loginCookie, parseCookies, sameToken, sessionCookie, type Session } from '../session.ts';

interface LoginHelpers {
  setSession(reply: FastifyReply, req: FastifyRequest, s: Session | null): void;
  loginToken(reply: FastifyReply, req: FastifyRequest): string;
  clearLoginToken(reply: FastifyReply, req: FastifyRequest): void;
}

/** Only a console path may follow a login (no open redirect). */
export const safeNext = (next: unknown) => (typeof next === 'string' && /^\/admin\/[^/\\]/.test(next) ? next : '/admin/machines');

export function loginPages(app: FastifyInstance, con: Console, h: LoginHelpers): void {
  const form = (reply: FastifyReply, req: FastifyRequest, next: string, error?: string) => {
    const token = h.loginToken(reply, req);
    return con.page(
      reply,
      req,
      'Log in',
      html`${error ? html`<p role="alert" class="flash error">${error}</p>` : ''}
<form method="post" action="/admin/login" class="login"><input type="hidden" name="_csrf" value="${token}"><input type="hidden" name="next" value="${next}">
<label for="key">Admin API key</label>
<input id="key" name="key" type="password" autocomplete="off" required autofocus placeholder="tpkey-api-…">
<p class="hint">The key stays on the server: you get a session cookie, the key is not stored in the browser.</p>
<button type="submit">Log in</button></form>${
        con.deps.oidcLogin ? html`<p class="sso"><a href="/oidc/console-login?next=${encodeURIComponent(next)}">Log in with single sign-on</a></p>` : ''
      }`,
      error ? 401 : 200,
    );
  };

  app.get<{ Querystring: { next?: string } }>('/login', { config: { anonymous: true } }, async (req, reply) => form(reply, req, safeNext(req.query.next)));

  app.post<{ Body: Form }>('/login', { config: { anonymous: true } }, async (req, reply) => {
    const body = req.body ?? {};
    const cookies = parseCookies(req.headers.cookie);
    if (!sameToken(typeof body._csrf === 'string' ? body._csrf : undefined, cookies.get(loginCookie))) {
      return reply.code(403).type('text/plain; charset=utf-8').send('refused: missing or wrong CSRF token (reload the login page)');
    }
    const key = typeof body.key === 'string' ? con.deps.tailnet.apiKeys.authenticate(body.key.trim()) : null;
    if (!key) return form(reply, req, safeNext(body.next), 'That API key is invalid, expired or revoked.');
    const old = cookies.get(sessionCookie);
    if (old) con.sessions.end(old);
    h.setSession(reply, req, con.sessions.create(key));
    h.clearLoginToken(reply, req);
    return reply.redirect(safeNext(body.next), 303);
  });

  app.post('/logout', async (req, reply) => {
    con.sessions.end(con.ctx(req).session.id);
    h.setSession(reply, req, null);
    return reply.redirect('/admin/login', 303);
  });
}
