/**
 * Bearer-token authentication for the admin API: every /api/v1 route but the OpenAPI document needs a valid,
 * unexpired, unrevoked API key, and a write needs a key whose role may change that area (src/auth/roles.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Tailnet } from '../state/tailnet.ts';
import { apiV1Denial } from '../auth/roles.ts';
import { identify } from '../audit/context.ts';

export function requireApiKey(app: FastifyInstance, tailnet: Tailnet, publicPaths: Set<string>): void {
  app.addHook('onRequest', async (req, reply) => {
    // The console (src/console) authenticates its own routes by session cookie.
    if (publicPaths.has(req.routeOptions.url ?? '') || req.routeOptions.config.session) return;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) {
      return reply.code(401).send({ code: 401, message: 'missing API key: send "Authorization: Bearer <key>"' });
    }
    const key = tailnet.apiKeys.authenticate(m[1]!);
    if (!key) {
      return reply.code(401).send({ code: 401, message: 'invalid, expired or revoked API key' });
    }
    identify(`apikey:${key.prefix}`);
    const route = req.routeOptions.url;
    const denial = route === undefined ? null : apiV1Denial(key.role, req.method, route);
    if (denial) return reply.code(403).send({ code: 403, message: denial });
  });
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route authenticates by console session, not by API key. */
    session?: boolean;
  }
}
