/** API v2 users: list (filtered by type and role; every tailplane user is an active member) and get. */
import type { FastifyInstance } from 'fastify';
import type { Tailnet } from '../../state/tailnet.ts';
import { str, strict } from '../schemas.ts';
import { httpError, tailnetParams } from './common.ts';
import { userJson } from './shapes.ts';

const roles = ['owner', 'member', 'admin', 'it-admin', 'network-admin', 'billing-admin', 'auditor'];

export function userRoutes(app: FastifyInstance, t: Tailnet): void {
  app.get<{ Querystring: { type?: string; role?: string } }>(
    '/tailnet/:tailnet/users',
    {
      schema: {
        summary: 'List users',
        params: tailnetParams,
        querystring: strict({ type: { type: 'string', enum: ['member', 'shared'] }, role: { type: 'string', enum: roles } }),
      },
      config: { scope: 'users:read' },
    },
    async (req) => {
      const { type, role } = req.query;
      const matches = (type === undefined || type === 'member') && (role === undefined || role === 'member');
      return { users: matches ? t.users.list().map((u) => userJson(u, t)) : [] };
    }
  );

  app.get<{ Params: { id: string } }>(
    '/users/:id',
    { schema: { summary: 'Get a user', params: strict({ id: str }, ['id']) }, config: { scope: 'users:read' } },
    async (req) => {
      if (!/^[0-9]{1,15}$/.test(req.params.id)) throw httpError(404, `user "${req.params.id}" not found`);
      return userJson(t.users.get(Number(req.params.id)), t);
    }
  );
}
