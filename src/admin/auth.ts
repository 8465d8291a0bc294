/**
 * Bearer-token authentication for the admin API: every /api/v1 route but the OpenAPI document needs a valid,
 * unexpired, unrevoked API key.
 */
import type { FastifyInstance } from 'fastify';
import type { Tailnet } from '../state/tailnet.ts';

export function requireApiKey(app: FastifyInstance, tailnet: Tailnet, publicPaths: Set<string>): void {
  app.addHook('onRequest', async (req, reply) => {
    if (publicPaths.has(req.routeOptions.url ?? '')) return;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) {
      return reply.code(401).send({ code: 401, message: 'missing API key: send "Authorization: Bearer <key>"' });
    }
    if (!tailnet.apiKeys.authenticate(m[1]!)) {
      return reply.code(401).send({ code: 401, message: 'invalid, expired or revoked API key' });
    }
  });
}
