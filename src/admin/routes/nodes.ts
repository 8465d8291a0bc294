/**
 * /api/v1/node: list (by user), show, rename, tag, approve routes, expire, delete; and /api/v1/auth/register,
 * which completes an interactive login.
 */
import type { FastifyInstance } from 'fastify';
import { completeLogin, type Registrations } from '../../state/registrations.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { notFound } from '../../state/errors.ts';
import { nodeJson } from '../serialize.ts';
import { bool, idParams, idString, nullableTime, str, strList, strict } from '../schemas.ts';

type IdParams = { Params: { id: string } };

export function nodeRoutes(app: FastifyInstance, t: Tailnet, registrations: Registrations): void {
  const json = (n: Parameters<typeof nodeJson>[0]) => ({ node: nodeJson(n, t) });

  app.get<{ Querystring: { user?: string } }>(
    '/api/v1/node',
    { schema: { summary: 'List nodes, optionally of one user (name or id)', querystring: strict({ user: str }) } },
    async (req) => {
      const { user } = req.query;
      const owner = user === undefined ? undefined : (t.users.byName(user) ?? t.users.list().find((u) => String(u.id) === user));
      if (user !== undefined && !owner) throw notFound(`user "${user}" not found`);
      const nodes = t.nodes.list().filter((n) => owner === undefined || n.userId === owner.id);
      return { nodes: nodes.map((n) => nodeJson(n, t)) };
    },
  );

  app.get<IdParams>('/api/v1/node/:id', { schema: { summary: 'Show a node', params: idParams } }, async (req) =>
    json(t.nodes.get(Number(req.params.id))),
  );

  app.post<{ Params: { id: string; newName: string } }>(
    '/api/v1/node/:id/rename/:newName',
    { schema: { summary: 'Rename a node (its MagicDNS name)', params: strict({ id: idString, newName: str }, ['id', 'newName']) } },
    async (req) => json(t.nodes.rename(Number(req.params.id), req.params.newName)),
  );

  app.post<IdParams & { Body: { tags: string[] } }>(
    '/api/v1/node/:id/tags',
    { schema: { summary: 'Set a node\'s tags', params: idParams, body: strict({ tags: strList }, ['tags']) } },
    async (req) => json(t.nodes.setTags(Number(req.params.id), req.body.tags)),
  );

  app.post<IdParams & { Body: { routes: string[] } }>(
    '/api/v1/node/:id/approve_routes',
    {
      schema: {
        summary: 'Set the approved routes of a node (empty list removes all)',
        params: idParams,
        body: strict({ routes: strList }, ['routes']),
      },
    },
    async (req) => json(t.nodes.approveRoutes(Number(req.params.id), req.body.routes)),
  );

  app.post<IdParams & { Body: { expiry?: string | null; disableExpiry?: boolean } | undefined }>(
    '/api/v1/node/:id/expire',
    {
      schema: {
        summary: 'Expire a node now, at a time, or disable its expiry',
        params: idParams,
        body: strict({ expiry: nullableTime, disableExpiry: bool }),
      },
    },
    async (req) => {
      const b = req.body ?? {};
      const at = b.disableExpiry ? null : (b.expiry ?? new Date().toISOString());
      return json(t.nodes.setExpiry(Number(req.params.id), at));
    },
  );

  app.delete<IdParams>('/api/v1/node/:id', { schema: { summary: 'Delete a node', params: idParams } }, async (req) => {
    t.nodes.remove(Number(req.params.id));
    return {};
  });

  app.get('/api/v1/auth/pending', { schema: { summary: 'List interactive logins waiting for approval' } }, async () => ({
    pending: registrations.list().map((p) => ({ authId: p.authId, hostname: p.hostname, nodeKey: p.nodeKey })),
  }));

  app.post<{ Body: { user: string; authId: string } }>(
    '/api/v1/auth/register',
    {
      schema: {
        summary: 'Approve an interactive login as a user (name or id)',
        body: strict({ user: str, authId: str }, ['user', 'authId']),
      },
    },
    async (req) => {
      const { user, authId } = req.body;
      const owner = t.users.byName(user) ?? t.users.list().find((u) => String(u.id) === user);
      if (!owner) throw notFound(`user "${user}" not found`);
      return json(completeLogin(t, registrations, authId, owner));
    },
  );
}
