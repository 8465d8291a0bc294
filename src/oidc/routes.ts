/**
 * The OIDC doors of the HTTP server: a machine's login link (/register/:authId) sends the browser to the IdP, and
 * /oidc/callback finishes the login: the person must be allowed in, then the machine is registered to their user
 * (found by issuer+subject, created on first login). Every refusal is a page that says why.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { durationMs, type OidcConfig } from '../config/config.ts';
import { completeLogin, type Registrations } from '../state/registrations.ts';
import { StateError } from '../state/errors.ts';
import type { Tailnet } from '../state/tailnet.ts';
import { OidcLoginError, type Identity, type RelyingParty } from './relying-party.ts';
import { refusal, userFor } from './users.ts';

export const callbackPath = '/oidc/callback';

export interface OidcRouteDeps {
  tailnet: Tailnet;
  registrations: Registrations;
  rp: RelyingParty;
  config: OidcConfig;
  serverUrl: () => string;
}

export function oidcRoutes(app: FastifyInstance, deps: OidcRouteDeps): void {
  app.get<{ Params: { authId: string } }>('/register/:authId', async (req, reply) => {
    const login = deps.registrations.get(req.params.authId);
    if (!login) return sendPage(reply, 404, 'Login not found', 'This login link has expired. Run <code>tailscale up</code> again.');
    return beginOrExplain(reply, deps.rp, { kind: 'register', authId: login.authId });
  });

  app.get(callbackPath, async (req, reply) => {
    let identity: Identity;
    let purpose;
    try {
      ({ identity, purpose } = await deps.rp.finish(new URL(req.url, deps.serverUrl())));
    } catch (err) {
      if (!(err instanceof OidcLoginError)) throw err;
      return sendPage(reply, 400, 'Login failed', escapeHtml(err.message));
    }
    const why = refusal(deps.config, identity);
    if (why) {
      req.log.info({ user: identity.email || identity.providerId, why }, 'oidc: login refused');
      return sendPage(reply, 403, 'Not allowed', `You cannot log in to this tailnet: ${escapeHtml(why)}. Ask your administrator if you think this is wrong.`);
    }
    if (purpose.kind !== 'register') return sendPage(reply, 400, 'Login failed', 'This login is not for a machine.');
    const login = deps.registrations.get(purpose.authId);
    if (!login) return sendPage(reply, 404, 'Login not found', 'The machine stopped waiting. Run <code>tailscale up</code> again.');
    try {
      const user = userFor(deps.tailnet, identity);
      const node = completeLogin(deps.tailnet, deps.registrations, login.authId, user, expiryOf(deps.config, identity));
      return sendPage(reply, 200, 'Machine registered', `<b>${escapeHtml(node.givenName)}</b> is now in the tailnet as <b>${escapeHtml(user.name)}</b>. You can close this page.`);
    } catch (err) {
      if (!(err instanceof StateError)) throw err;
      return sendPage(reply, 400, 'Registration refused', escapeHtml(err.message));
    }
  });
}

/** The node key expiry an OIDC login gives: the ID token's own, or now plus the configured duration. */
function expiryOf(config: OidcConfig, id: Identity): string | undefined {
  const at = config.expiry === 'from_token' ? id.expiresAt : Date.now() + durationMs(config.expiry)!;
  return at > 0 ? new Date(at).toISOString() : undefined;
}

async function beginOrExplain(reply: FastifyReply, rp: RelyingParty, purpose: Parameters<RelyingParty['begin']>[0]) {
  try {
    return reply.redirect(await rp.begin(purpose), 302);
  } catch (err) {
    if (!(err instanceof OidcLoginError)) throw err;
    return sendPage(reply, 503, 'Login unavailable', escapeHtml(err.message));
  }
}

export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A small stand-alone HTML page; `body` is already HTML. */
export function sendPage(reply: FastifyReply, status: number, title: string, body: string) {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .send(`<!doctype html><html><head><meta charset="utf-8"><title>${title} · tailplane</title></head><body><h1>${title}</h1><p>${body}</p></body></html>`);
}
