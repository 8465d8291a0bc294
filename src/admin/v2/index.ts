/**
 * API v2: Tailscale's API shapes (`/api/v2/tailnet/-/…`, `/api/v2/device/{id}/…`) over the same state
 * functions and checks as API v1, so tools written for Tailscale (its Go client, Terraform provider, scripts)
 * work by changing only their base URL. Authenticates with an API key (Basic user or Bearer) or an OAuth
 * access token, and checks the route's scope; every 4xx/5xx body has a `message`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Scope } from '../../domain/scopes.ts';
import { isRefusal, may, type Authenticator } from '../../auth/principal.ts';
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
}

function keepRaw(req: FastifyRequest, body: string): unknown {
  req.rawText = body;
  return body;
}

export function apiV2(app: FastifyInstance, deps: V2Deps): void {
  app.register(
    async (v2) => {
      // JSON is parsed here rather than by fastify so that the policy routes can keep the text as sent.
      v2.removeContentTypeParser('application/json');
      v2.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
        const text = keepRaw(req, body as string);
        if ((text as string).trim() === '') return done(null, undefined);
        try {
          done(null, JSON.parse(text as string));
        } catch (err) {
          done(httpError(400, `invalid JSON body: ${(err as Error).message}`), undefined);
        }
      });
      v2.addContentTypeParser('application/hujson', { parseAs: 'string' }, (req, body, done) => done(null, keepRaw(req, body as string)));
      v2.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
        done(null, Object.fromEntries(new URLSearchParams(body as string))),
      );
      v2.addHook('onRequest', async (req, reply) => {
        const scope = req.routeOptions.config.scope;
        if (scope === undefined) return;
        const tailnet = (req.params as { tailnet?: string }).tailnet;
        if (tailnet !== undefined && tailnet !== '-') {
          return reply.code(404).send({ message: `tailnet "${tailnet}" not found: use "-" (the tailnet of your credentials)` });
        }
        const who = deps.auth.identify(req.headers.authorization);
        if (isRefusal(who)) return reply.code(401).send({ message: who.refused });
        if (!may(who, scope)) return reply.code(403).send({ message: `this credential lacks the "${scope}" scope` });
      });
      oauthRoutes(v2, deps.tailnet);
      policyRoutes(v2, deps.tailnet, deps.policy);
      deviceRoutes(v2, deps.tailnet);
      keyRoutes(v2, deps.tailnet);
      dnsRoutes(v2, deps.tailnet);
      userRoutes(v2, deps.tailnet);
    },
    { prefix: v2Prefix },
  );
}
