/**
 * The OIDC doors of the HTTP server: a machine's login link (/register/:authId) sends the browser to the IdP, and
 * /oidc/callback finishes the login: the person must be allowed in, then the machine is registered to their user
 * (found by issuer+subject, created on first login); /oidc/console-login does the same for the admin console,
 * whose role comes from oidc.console_roles. Every refusal is a page that says why.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { durationMs, type OidcConfig } from '../config/config.ts';
import { identify } from '../audit/context.ts';
import { completeLogin, type Registrations } from '../state/registrations.ts';
import { StateError } from '../state/errors.ts';
import type { Tailnet } from '../state/tailnet.ts';
import { roles, type Role } from '../domain/roles.ts';
import { cookie, sessionCookie, type Sessions } from '../console/session.ts';
import { safeNext } from '../console/pages/login.ts';
import { OidcLoginError, type Identity, type RelyingParty } from './relying-party.ts';
import { profileOf, refusal, userFor } from './users.ts';

export const callbackPath = '/oidc/callback';
export const consoleLoginPath = '/oidc/console-login';
/** Where a held SSH check sends its source user to approve it by a fresh login. */
export const sshCheckPath = '/oidc/ssh-check/:id';

export interface OidcRouteDeps {
  tailnet: Tailnet;
  registrations: Registrations;
  rp: RelyingParty;
  config: OidcConfig;
  serverUrl: () => string;
  /** The console's sessions, which an OIDC console login opens. */
  consoleSessions: Sessions;
}

export function oidcRoutes(app: FastifyInstance, deps: OidcRouteDeps): void {
  app.get<{ Params: { authId: string } }>('/register/:authId', async (req, reply) => {
    const login = deps.registrations.get(req.params.authId);
    if (!login) return sendPage(reply, 404, 'Login not found', 'This login link has expired. Run <code>tailscale up</code> again.');
    return beginOrExplain(reply, deps.rp, { kind: 'register', authId: login.authId });
  });

  app.get<{ Querystring: { next?: string } }>(consoleLoginPath, async (req, reply) =>
    beginOrExplain(reply, deps.rp, { kind: 'console', next: safeNext(req.query.next) }),
  );

  app.get<{ Params: { id: string } }>(sshCheckPath, async (req, reply) => {
    const check = deps.tailnet.sshChecks.get(req.params.id);
    if (!check || check.state !== 'pending') return sendPage(reply, 404, 'No such check', 'This SSH check is unknown or already decided; connect again.');
    return beginOrExplain(reply, deps.rp, { kind: 'ssh', checkId: check.id });
  });

  app.get(callbackPath, async (req, reply) => {
    let finished: Awaited<ReturnType<RelyingParty['finish']>>;
    try {
      finished = await deps.rp.finish(new URL(req.url, deps.serverUrl()));
    } catch (err) {
      if (!(err instanceof OidcLoginError)) throw err;
      return sendPage(reply, 400, 'Login failed', escapeHtml(err.message));
    }
    const { identity, purpose } = finished;
    // What this login changes (a user created or refreshed, a machine registered) is the person's doing.
    identify(`oidc:${identity.email || identity.providerId}`);
    const why = refusal(deps.config, identity);
    if (why) {
      req.log.info({ user: identity.email || identity.providerId, why }, 'oidc: login refused');
      return sendPage(reply, 403, 'Not allowed', `You cannot log in to this tailnet: ${escapeHtml(why)}. Ask your administrator if you think this is wrong.`);
    }
    if (purpose.kind === 'console') {
      const role = consoleRole(deps.config, identity.groups);
      if (!role) return sendPage(reply, 403, 'Not allowed', 'You have no console role: none of your groups is mapped to one (oidc.console_roles).');
      const session = deps.consoleSessions.createForOidc(identity.email || identity.preferredUsername || identity.providerId, role);
      const secure = deps.serverUrl().startsWith('https:');
      reply.header('set-cookie', cookie(sessionCookie, session.id, deps.consoleSessions.cookieMaxAge(), secure));
      // A page rather than a redirect: after the IdP's cross-site redirect a SameSite=Strict cookie is only sent
      // on a navigation this site starts.
      const to = escapeHtml(purpose.next);
      reply.header('refresh', `0; url=${purpose.next}`);
      return sendPage(reply, 200, 'Logged in', `Logged in as ${escapeHtml(session.oidc!.user)} (${role}). <a href="${to}">Continue to the console</a>.`);
    }
    if (purpose.kind === 'ssh') return approveSshCheck(reply, deps, purpose.checkId, identity);
    const login = deps.registrations.get(purpose.authId);
    if (!login) return sendPage(reply, 404, 'Login not found', 'The machine stopped waiting. Run <code>tailscale up</code> again.');
    try {
      const user = userFor(deps.tailnet, deps.config, identity);
      const node = completeLogin(deps.tailnet, deps.registrations, login.authId, user, expiryOf(deps.config, identity));
      return sendPage(reply, 200, 'Machine registered', `<b>${escapeHtml(node.givenName)}</b> is now in the tailnet as <b>${escapeHtml(user.name)}</b>. You can close this page.`);
    } catch (err) {
      if (!(err instanceof StateError)) throw err;
      return sendPage(reply, 400, 'Registration refused', escapeHtml(err.message));
    }
  });
}

/**
 * Approves a held SSH check when the person who just logged in is its source user, and no one else. The fresh
 * login refreshes the user's profile and IdP groups as a machine login does.
 */
function approveSshCheck(reply: FastifyReply, deps: OidcRouteDeps, checkId: string, identity: Identity) {
  const t = deps.tailnet;
  const check = t.sshChecks.get(checkId);
  if (!check) return sendPage(reply, 404, 'No such check', 'This SSH check is unknown; connect again.');
  const user = t.users.byProviderId(identity.providerId);
  if (!user || user.id !== check.srcUserId) {
    return sendPage(reply, 403, 'Not allowed', `Only ${escapeHtml(check.srcUser)}, who started this SSH session, can approve it.`);
  }
  try {
    t.users.update(user.id, profileOf(deps.config, identity));
    t.sshChecks.approve(check.id, `${user.name} (oidc login)`);
  } catch (err) {
    if (!(err instanceof StateError)) throw err;
    return sendPage(reply, 409, 'Not approved', escapeHtml(err.message));
  }
  return sendPage(reply, 200, 'SSH session approved', `The SSH session of <b>${escapeHtml(check.srcNode)}</b> to <b>${escapeHtml(check.dstNode)}</b> as ${escapeHtml(check.localUser)} may go ahead.`);
}

/** The most powerful console role any of the groups maps to (roles are listed strongest first). */
function consoleRole(config: OidcConfig, groups: string[]): Role | undefined {
  const mapped = new Set(groups.map((g) => config.consoleRoles[g]));
  return roles.find((r) => mapped.has(r));
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
