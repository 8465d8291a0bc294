/**
 * API v2: Tailscale's API shapes (`/api/v2/tailnet/-/…`, `/api/v2/device/{id}/…`) over the same state
 * functions and checks as API v1, so tools written for Tailscale (its Go client, Terraform provider, scripts)
 * work by changing only their base URL. Authenticates with an API key (Basic user or Bearer) or an OAuth
 * access token, and checks the route's scope; every 4xx/5xx body has a `message`.
 */
import { identify } from '../../audit/context.ts';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Scope } from '../../domain/scopes.ts';
import { actorOf, isRefusal, may, type Authenticator } from '../../auth/principal.ts';
import { createRateCounter, defaultLimits } from '../../guard/limits.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import type { PolicyChecker } from '../policy-checker.ts';
import { httpError } from './common.ts';
import { deviceRoutes } from './devices.ts';
import { dnsRoutes } from './dns.ts';
import { keyRoutes } from './keys.ts';
import { oauthRoutes } from './oauth.ts';
import { policyRoutes } from './policy.ts';
import { userRoutes } from './users.ts';

export const v2Prefix = '/api/v2';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope an API v2 route needs; absent on the one public route (the token endpoint). */
    scope?: Scope;
  }
  interface FastifyRequest {
    /** The request body exactly as sent, for JSON and HuJSON bodies under API v2 (a policy is stored as sent). */
    rawText?: string;
  }
}

export interface V2Deps {
  tailnet: Tailnet;
  policy: PolicyChecker;
  auth: Authenticator;
  /** Failed authentications one source may make per minute (as on /api/v1). */
  authFailuresPerSourcePerMinute?: number;
}

/** Parses a JSON body, keeping its text as sent; an empty body is no body. */
function parseJson(req: FastifyRequest, text: string): unknown {
  req.rawText = text;
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw httpError(400, `invalid JSON body: ${(err as Error).message}`);
  }
}

export function apiV2(app: FastifyInstance, deps: V2Deps): void {
  const failures = createRateCounter(deps.authFailuresPerSourcePerMinute ?? defaultLimits.authFailuresPerSourcePerMinute);
  app.register(
    async (v2) => {
      // JSON is parsed here rather than by fastify so that the policy routes can keep the text as sent.
      v2.removeContentTypeParser('application/json');
      v2.addContentTypeParser('application/json', { parseAs: 'string' }, async (req: FastifyRequest, body: string) => parseJson(req, body));
      // A HuJSON policy body is text; the policy routes parse it with positions for their error messages.
      v2.addContentTypeParser(
        'application/hujson',
        { parseAs: 'string' },
        async (req: FastifyRequest, body: string) => (req.rawText = body)
      );
      // The OAuth token request (RFC 6749 §4.4.2).
      v2.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, async (_req: FastifyRequest, body: string) =>
        Object.fromEntries(new URLSearchParams(body))
      );
      v2.addHook('onRequest', async (req, reply) => {
        const scope = req.routeOptions.config.scope;
        if (scope === undefined) return;
        // Like /api/v1: a source that keeps failing is refused for the rest of the minute, and each failure is logged.
        if (failures.exhausted(req.ip)) {
          const wait = failures.retryAfter(req.ip);
          reply.header('retry-after', String(wait));
          return reply.code(429).send({ message: `too many failed authentications from ${req.ip}: try again in ${wait} s` });
        }
        const who = deps.auth.identify(req.headers.authorization);
        if (isRefusal(who)) {
          failures.hit(req.ip);
          req.log.warn({ source: req.ip, path: req.routeOptions.url }, 'admin API v2: authentication failed');
          return reply.code(401).send({ message: who.refused });
        }
        identify(actorOf(deps.tailnet, who));
        if (!may(who, scope)) return reply.code(403).send({ message: `this credential lacks the "${scope}" scope` });
        const tailnet = (req.params as { tailnet?: string }).tailnet;
        if (tailnet !== undefined && tailnet !== '-') {
          return reply.code(404).send({ message: `tailnet "${tailnet}" not found: use "-" (the tailnet of your credentials)` });
        }
      });
      oauthRoutes(v2, deps.tailnet);
      policyRoutes(v2, deps.tailnet, deps.policy);
      deviceRoutes(v2, deps.tailnet);
      keyRoutes(v2, deps.tailnet);
      dnsRoutes(v2, deps.tailnet);
      userRoutes(v2, deps.tailnet);
    },
    { prefix: v2Prefix }
  );
}
