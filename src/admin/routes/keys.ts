/**
 * /api/v1/preauthkey and /api/v1/apikey: create (the full key is returned only here), list, expire, delete.
 */
import type { FastifyInstance } from 'fastify';
import { roles, type Role } from '../../domain/roles.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { apiKeyJson, preAuthKeyJson } from '../serialize.ts';
import { bool, idString, nullableTime, str, strList, strict } from '../schemas.ts';

interface PreAuthKeyBody {
  user?: string;
  reusable?: boolean;
  ephemeral?: boolean;
  expiration?: string | null;
  aclTags?: string[];
}

export function keyRoutes(app: FastifyInstance, t: Tailnet): void {
  app.post<{ Body: PreAuthKeyBody }>(
    '/api/v1/preauthkey',
    {
      schema: {
        summary: 'Create a pre-auth key for a user (its nodes are owned by the user) or for tags',
        body: strict({ user: idString, reusable: bool, ephemeral: bool, expiration: nullableTime, aclTags: strList }),
      },
    },
    async (req) => {
      const b = req.body;
      const { key, record } = t.preAuthKeys.create({
        userId: b.user !== undefined ? Number(b.user) : null,
        reusable: b.reusable,
        ephemeral: b.ephemeral,
        expiration: b.expiration,
        tags: b.aclTags,
      });
      return { preAuthKey: preAuthKeyJson(record, t, key) };
    },
  );

  app.get<{ Querystring: { user?: string } }>(
    '/api/v1/preauthkey',
    { schema: { summary: 'List pre-auth keys (secrets are never shown)', querystring: strict({ user: idString }) } },
    async (req) => {
      const user = req.query.user;
      const keys = t.preAuthKeys.list().filter((k) => user === undefined || String(k.userId) === user);
      return { preAuthKeys: keys.map((k) => preAuthKeyJson(k, t)) };
    },
  );

  app.post<{ Body: { id: string } }>(
    '/api/v1/preauthkey/expire',
    { schema: { summary: 'Expire a pre-auth key now', body: strict({ id: idString }, ['id']) } },
    async (req) => {
      t.preAuthKeys.expire(Number(req.body.id));
      return {};
    },
  );

  app.delete<{ Querystring: { id: string } }>(
    '/api/v1/preauthkey',
    { schema: { summary: 'Delete a pre-auth key', querystring: strict({ id: idString }, ['id']) } },
    async (req) => {
      t.preAuthKeys.remove(Number(req.query.id));
      return {};
    },
  );

  app.post<{ Body: { expiration?: string | null; role?: Role } }>(
    '/api/v1/apikey',
    {
      schema: {
        summary: 'Create an API key (shown once) with a role: admin (default), network-admin, it-admin or auditor',
        body: strict({ expiration: nullableTime, role: { type: 'string', enum: roles } }),
      },
    },
    async (req) => ({ apiKey: t.apiKeys.create({ expiration: req.body?.expiration, role: req.body?.role }).key }),
  );

  app.get('/api/v1/apikey', { schema: { summary: 'List API keys' } }, async () => ({
    apiKeys: t.apiKeys.list().map(apiKeyJson),
  }));

  app.post<{ Body: { id?: string; prefix?: string } }>(
    '/api/v1/apikey/expire',
    { schema: { summary: 'Expire (revoke) an API key', body: strict({ id: idString, prefix: str }) } },
    async (req) => {
      t.apiKeys.expire(keyRef(req.body));
      return {};
    },
  );

  app.delete<{ Params: { prefix: string }; Querystring: { id?: string } }>(
    '/api/v1/apikey/:prefix',
    {
      schema: {
        summary: 'Delete an API key by prefix (or by ?id=)',
        params: strict({ prefix: str }, ['prefix']),
        querystring: strict({ id: idString }),
      },
    },
    async (req) => {
      t.apiKeys.remove(keyRef({ id: req.query.id, prefix: req.params.prefix }));
      return {};
    },
  );
}

function keyRef(b: { id?: string; prefix?: string }): { id?: number; prefix?: string } {
  if (b.id !== undefined) return { id: Number(b.id) };
  if (b.prefix) return { prefix: b.prefix };
  throw Object.assign(new Error('give the API key id or prefix'), { statusCode: 400 });
}
