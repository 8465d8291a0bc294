/**
 * API v2 devices: list (with `fields=all` and filters on any device field), get, delete, and the device's
 * tags, routes, authorization, key expiry and name, each through the same state function as API v1.
 */
import type { FastifyInstance } from 'fastify';
import { defaultKeyLifetimeMs } from '../../domain/types.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { bool, str, strList, strict } from '../schemas.ts';
import { deviceOf, deviceParams as params, httpError, tailnetParams } from './common.ts';
import { deviceFilterFields, deviceJson } from './shapes.ts';

type Id = { Params: { id: string } };
type Query = Record<string, string | string[] | undefined>;

/** Keeps the devices whose field matches one of the wanted values (any shared element for list fields). */
function filtered(devices: Record<string, unknown>[], query: Query): Record<string, unknown>[] {
  const filters = Object.entries(query).filter(([key]) => key !== 'fields');
  const unknown = filters.find(([key]) => !deviceFilterFields.has(key));
  if (unknown) throw httpError(400, `cannot filter devices by "${unknown[0]}": not a device field`);
  return devices.filter((d) =>
    filters.every(([key, wanted]) => {
      const values = ([] as string[]).concat(wanted ?? []);
      const field = d[key];
      return Array.isArray(field) ? field.some((v) => values.includes(String(v))) : values.includes(String(field));
    })
  );
}

export function deviceRoutes(app: FastifyInstance, t: Tailnet): void {
  const routes = (id: number) => {
    const n = t.nodes.get(id);
    return { advertisedRoutes: n.availableRoutes, enabledRoutes: n.approvedRoutes };
  };

  app.get<{ Querystring: Query }>(
    '/tailnet/:tailnet/devices',
    {
      schema: {
        summary: 'List devices; fields=all adds routes and connectivity; other parameters filter by device field',
        params: tailnetParams,
      },
      config: { scope: 'devices:core:read' },
    },
    async (req) => {
      const fields = req.query.fields;
      if (fields !== undefined && fields !== 'all' && fields !== 'default') throw httpError(400, 'fields must be "all" or "default"');
      const devices = t.nodes.list().map((n) => deviceJson(n, t, fields === 'all'));
      return { devices: filtered(devices, req.query) };
    }
  );

  app.get<Id & { Querystring: { fields?: string } }>(
    '/device/:id',
    {
      schema: { summary: 'Get a device', params, querystring: strict({ fields: { type: 'string', enum: ['all', 'default'] } }) },
      config: { scope: 'devices:core:read' },
    },
    async (req) => deviceJson(deviceOf(t, req.params.id), t, req.query.fields === 'all')
  );

  app.delete<Id>(
    '/device/:id',
    { schema: { summary: 'Delete a device', params }, config: { scope: 'devices:core' } },
    async (req, reply) => {
      t.nodes.remove(deviceOf(t, req.params.id).id);
      return reply.send();
    }
  );

  app.post<Id & { Body: { tags: string[] } }>(
    '/device/:id/tags',
    { schema: { summary: "Set a device's tags", params, body: strict({ tags: strList }, ['tags']) }, config: { scope: 'devices:core' } },
    async (req, reply) => {
      t.nodes.setTags(deviceOf(t, req.params.id).id, req.body.tags);
      return reply.send();
    }
  );

  app.get<Id>(
    '/device/:id/routes',
    { schema: { summary: 'Advertised and enabled subnet routes', params }, config: { scope: 'devices:routes:read' } },
    async (req) => routes(deviceOf(t, req.params.id).id)
  );

  app.post<Id & { Body: { routes: string[] } }>(
    '/device/:id/routes',
    {
      schema: { summary: 'Set the enabled subnet routes', params, body: strict({ routes: strList }, ['routes']) },
      config: { scope: 'devices:routes' },
    },
    async (req) => {
      const id = deviceOf(t, req.params.id).id;
      t.nodes.approveRoutes(id, req.body.routes);
      return routes(id);
    }
  );

  app.post<Id & { Body: { authorized: boolean } }>(
    '/device/:id/authorized',
    {
      schema: {
        summary: 'Authorize a device (every device is authorized: tailplane has no device approval)',
        params,
        body: strict({ authorized: bool }, ['authorized']),
      },
      config: { scope: 'devices:core' },
    },
    async (req, reply) => {
      deviceOf(t, req.params.id);
      if (!req.body.authorized)
        throw httpError(
          400,
          'device approval is not enabled on this server, so a device cannot be deauthorized: expire its key or delete it instead'
        );
      return reply.send();
    }
  );

  app.post<Id & { Body: { keyExpiryDisabled: boolean } }>(
    '/device/:id/key',
    {
      schema: {
        summary: "Turn the device key's expiry off or back on",
        params,
        body: strict({ keyExpiryDisabled: bool }, ['keyExpiryDisabled']),
      },
      config: { scope: 'devices:core' },
    },
    async (req, reply) => {
      const id = deviceOf(t, req.params.id).id;
      t.nodes.setExpiry(id, req.body.keyExpiryDisabled ? null : new Date(Date.now() + defaultKeyLifetimeMs).toISOString());
      return reply.send();
    }
  );

  app.post<Id & { Body: { name: string } }>(
    '/device/:id/name',
    {
      schema: {
        summary: "Set the device's name (its MagicDNS label; the tailnet domain may be included)",
        params,
        body: strict({ name: str }, ['name']),
      },
      config: { scope: 'devices:core' },
    },
    async (req, reply) => {
      const suffix = `.${t.dns().baseDomain}`;
      const name = req.body.name.endsWith(suffix) ? req.body.name.slice(0, -suffix.length) : req.body.name;
      t.nodes.rename(deviceOf(t, req.params.id).id, name);
      return reply.send();
    }
  );
}
