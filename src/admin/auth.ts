/**
 * Bearer-token authentication for the admin API: every /api/v1 route but the OpenAPI document needs a valid,
 * unexpired, unrevoked API key, and a write needs a key whose role may change that area (src/auth/roles.ts).
 * Each failed attempt is logged (the key's public prefix only, and the source address), and a source that fails
 * too often is refused with 429 for the rest of the minute, valid key or not, so keys cannot be guessed at speed.
 * Every route registered on the app inherits this.
 */
import type { FastifyInstance } from 'fastify';
import { createRateCounter, defaultLimits } from '../guard/limits.ts';
import { splitSecret } from '../state/secrets.ts';
import type { Tailnet } from '../state/tailnet.ts';
import { apiV1Denial } from '../auth/roles.ts';
import { identify } from '../audit/context.ts';

export interface AuthOptions {
  /** Failed authentications one source may make per minute. */
  readonly failuresPerSourcePerMinute?: number;
}

/** What may be logged of a presented key: its public prefix when it has our shape, else only its length. */
function keyLabel(key: string): string {
  const parts = splitSecret('tpkey-api', key);
  return parts ? `tpkey-api-${parts.prefix}` : `(not an API key, ${key.length} characters)`;
}

export function requireApiKey(app: FastifyInstance, tailnet: Tailnet, publicPaths: Set<string>, opts: AuthOptions = {}): void {
  const failures = createRateCounter(opts.failuresPerSourcePerMinute ?? defaultLimits.authFailuresPerSourcePerMinute);
  app.addHook('onRequest', async (req, reply) => {
    // The console (src/console) authenticates its own routes by session cookie.
    if (publicPaths.has(req.routeOptions.url ?? '') || req.routeOptions.config.session) return;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) {
      return reply.code(401).send({ code: 401, message: 'missing API key: send "Authorization: Bearer <key>"' });
    }
    if (failures.exhausted(req.ip)) {
      const wait = failures.retryAfter(req.ip);
      reply.header('retry-after', String(wait));
      return reply.code(429).send({ code: 429, message: `too many failed authentications from ${req.ip}: try again in ${wait} s` });
    }
    const key = tailnet.apiKeys.authenticate(m[1]!);
    if (!key) {
      failures.hit(req.ip);
      req.log.warn({ source: req.ip, key: keyLabel(m[1]!), path: req.routeOptions.url }, 'admin API: authentication failed');
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
