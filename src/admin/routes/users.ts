/**
 * /api/v1/user: create, list (filter by id, name or e-mail), rename, update, delete.
 */
import type { FastifyInstance } from 'fastify';
import type { Tailnet } from '../../state/tailnet.ts';
import { userJson } from '../serialize.ts';
import { idString, str, strict } from '../schemas.ts';

export function userRoutes(app: FastifyInstance, t: Tailnet): void {
  app.post<{ Body: { name: string; displayName?: string; email?: string; pictureUrl?: string } }>(
    '/api/v1/user',
    {
      schema: {
        summary: 'Create a user',
        body: strict({ name: str, displayName: str, email: str, pictureUrl: str }, ['name']),
      },
    },
    async (req) => ({ user: userJson(t.users.create(req.body)) }),
  );

  app.get<{ Querystring: { id?: string; name?: string; email?: string } }>(
    '/api/v1/user',
    { schema: { summary: 'List users', querystring: strict({ id: idString, name: str, email: str }) } },
    async (req) => {
      const { id, name, email } = req.query;
      const users = t.users
        .list()
        .filter((u) => (id === undefined || String(u.id) === id) && (name === undefined || u.name === name))
        .filter((u) => email === undefined || u.email === email);
      return { users: users.map(userJson) };
    },
  );

  app.post<{ Params: { oldId: string; newName: string } }>(
    '/api/v1/user/:oldId/rename/:newName',
    { schema: { summary: 'Rename a user', params: strict({ oldId: idString, newName: str }, ['oldId', 'newName']) } },
    async (req) => ({ user: userJson(t.users.rename(Number(req.params.oldId), req.params.newName)) }),
  );

  app.put<{ Params: { id: string }; Body: { displayName?: string; email?: string } }>(
    '/api/v1/user/:id',
    {
      schema: {
        summary: "Update a user's display name and e-mail",
        params: strict({ id: idString }, ['id']),
        body: strict({ displayName: str, email: str }),
      },
    },
    async (req) => ({ user: userJson(t.users.update(Number(req.params.id), req.body ?? {})) }),
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/user/:id',
    { schema: { summary: 'Delete a user (refused while it owns nodes)', params: strict({ id: idString }, ['id']) } },
    async (req) => {
      t.users.remove(Number(req.params.id));
      return {};
    },
  );
}
