/**
 * API v2 auth keys: create (Tailscale's capability shape; the key is shown only here), list, get, delete.
 * Keys made here are owned by tags: an API key or OAuth client belongs to no user whose devices they could be.
 */
import type { FastifyInstance } from 'fastify';
import type { Tailnet } from '../../state/tailnet.ts';
import { bool, str, strict } from '../schemas.ts';
import { httpError, tailnetParams } from './common.ts';
import { keyJson } from './shapes.ts';

/** Tailscale's default and longest auth key lifetime. */
const maxExpirySeconds = 90 * 86_400;

const nullableStrList = { type: ['array', 'null'], items: { type: 'string' } } as const;

const createBody = strict({
  keyType: { type: 'string', enum: ['auth'] },
  capabilities: strict({
    devices: strict({ create: strict({ reusable: bool, ephemeral: bool, tags: nullableStrList, preauthorized: bool }) }),
  }),
  expirySeconds: { type: 'integer', minimum: 0, maximum: maxExpirySeconds },
  description: { type: 'string', maxLength: 100 },
});

interface CreateBody {
  capabilities?: { devices?: { create?: { reusable?: boolean; ephemeral?: boolean; tags?: string[] | null } } };
  expirySeconds?: number;
  description?: string;
}

type KeyParams = { Params: { tailnet: string; id: string } };
const keyParams = strict({ tailnet: str, id: str }, ['tailnet', 'id']);

/** The pre-auth key behind a key id; any other id is a 404. */
const keyId = (id: string) => {
  if (!/^[0-9]{1,15}$/.test(id)) throw httpError(404, `key "${id}" not found`);
  return Number(id);
};

export function keyRoutes(app: FastifyInstance, t: Tailnet): void {
  app.post<{ Body: CreateBody }>(
    '/tailnet/:tailnet/keys',
    { schema: { summary: 'Create an auth key (shown once)', params: tailnetParams, body: createBody }, config: { scope: 'auth_keys' } },
    async (req) => {
      const create = req.body?.capabilities?.devices?.create ?? {};
      const tags = create.tags ?? [];
      if (tags.length === 0) {
        throw httpError(
          400,
          'give capabilities.devices.create.tags: keys made through the API are owned by tags, as API keys and OAuth clients belong to no user'
        );
      }
      const seconds = req.body?.expirySeconds || maxExpirySeconds;
      const { key, record } = t.preAuthKeys.create({
        tags,
        reusable: create.reusable ?? false,
        ephemeral: create.ephemeral ?? false,
        expiration: new Date(Date.now() + seconds * 1000).toISOString(),
        description: req.body?.description ?? '',
      });
      return keyJson(record, new Date(), key);
    }
  );

  app.get<{ Querystring: { all?: string } }>(
    '/tailnet/:tailnet/keys',
    {
      schema: {
        summary: 'List auth keys',
        params: tailnetParams,
        querystring: strict({ all: { type: 'string', enum: ['true', 'false'] } }),
      },
      config: { scope: 'auth_keys:read' },
    },
    async () => ({ keys: t.preAuthKeys.list().map((k) => keyJson(k, new Date())) })
  );

  app.get<KeyParams>(
    '/tailnet/:tailnet/keys/:id',
    { schema: { summary: 'Get an auth key (never its secret)', params: keyParams }, config: { scope: 'auth_keys:read' } },
    async (req) => keyJson(t.preAuthKeys.get(keyId(req.params.id)), new Date())
  );

  app.delete<KeyParams>(
    '/tailnet/:tailnet/keys/:id',
    { schema: { summary: 'Delete (revoke) an auth key', params: keyParams }, config: { scope: 'auth_keys' } },
    async (req, reply) => {
      t.preAuthKeys.remove(keyId(req.params.id));
      return reply.send();
    }
  );
}
