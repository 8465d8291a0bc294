/**
 * /api/v1/oauth-client: OAuth clients for API v2 — create (the secret is returned only here), list, delete
 * (which revokes the tokens it obtained).
 */
import type { FastifyInstance } from 'fastify';
import type { OAuthClient } from '../../domain/types.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { idParams, str, strList, strict } from '../schemas.ts';

const clientJson = (c: OAuthClient) => ({
  id: String(c.id),
  clientId: c.prefix,
  scopes: c.scopes,
  description: c.description,
  createdAt: c.createdAt,
});

export function oauthClientRoutes(app: FastifyInstance, t: Tailnet): void {
  app.post<{ Body: { scopes: string[]; description?: string } }>(
    '/api/v1/oauth-client',
    {
      schema: {
        summary: 'Create an OAuth client for API v2 (its secret is shown once)',
        body: strict({ scopes: strList, description: str }, ['scopes']),
      },
    },
    async (req) => {
      const { secret, record } = t.oauthClients.create(req.body);
      return { oauthClient: { ...clientJson(record), clientSecret: secret } };
    }
  );

  app.get('/api/v1/oauth-client', { schema: { summary: 'List OAuth clients (secrets are never shown)' } }, async () => ({
    oauthClients: t.oauthClients.list().map(clientJson),
  }));

  app.delete<{ Params: { id: string } }>(
    '/api/v1/oauth-client/:id',
    { schema: { summary: 'Delete an OAuth client and revoke its tokens', params: idParams } },
    async (req) => {
      t.oauthClients.remove(Number(req.params.id));
      return {};
    }
  );
}
