/**
 * `tailplane oauth-clients …`: OAuth clients for API v2 (client credentials with scopes, e.g. for Tailscale's
 * Terraform provider or Kubernetes operator). The secret is printed once.
 */
import { UsageError } from '../args.ts';
import { render, renderObject, type Column } from '../output.ts';
import type { Command } from './command.ts';

interface ApiOAuthClient {
  id: string;
  clientId: string;
  scopes: string[];
  description: string;
  createdAt: string;
  clientSecret?: string;
}

const columns: Column<ApiOAuthClient>[] = [
  { header: 'ID', value: (c) => c.id },
  { header: 'Client ID', value: (c) => c.clientId },
  { header: 'Scopes', value: (c) => c.scopes.join(',') },
  { header: 'Description', value: (c) => c.description },
  { header: 'Created', value: (c) => c.createdAt },
];

export const oauthClientCommands: Command[] = [
  {
    path: ['oauth-clients', 'create'],
    summary: 'Create an OAuth client for API v2 (its secret is printed once)',
    flags: {
      scopes: { alias: 's', type: 'string', description: 'comma-separated scopes, e.g. devices:core,dns:read,policy_file' },
      description: { alias: 'd', type: 'string', description: 'what the client is for' },
    },
    async run(ctx) {
      const scopes = (ctx.flag('scopes') ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (scopes.length === 0) throw new UsageError('give the scopes as --scopes devices:core,dns:read,…');
      const { oauthClient } = await ctx.client().post<{ oauthClient: ApiOAuthClient }>('/api/v1/oauth-client', {
        scopes,
        description: ctx.flag('description') ?? '',
      });
      if (ctx.format !== 'table') return renderObject(ctx.format, oauthClient as never);
      return `client id:     ${oauthClient.clientId}\nclient secret: ${oauthClient.clientSecret}\nscopes:        ${scopes.join(
        ' '
      )}\n(the secret is shown only now)`;
    },
  },
  {
    path: ['oauth-clients', 'list'],
    aliases: [['oauth-clients', 'ls']],
    summary: 'List OAuth clients',
    async run(ctx) {
      const { oauthClients } = await ctx.client().get<{ oauthClients: ApiOAuthClient[] }>('/api/v1/oauth-client');
      return render(ctx.format, oauthClients, oauthClients, columns);
    },
  },
  {
    path: ['oauth-clients', 'delete'],
    summary: 'Delete an OAuth client (its tokens stop working)',
    flags: { id: { alias: 'i', type: 'string', description: 'OAuth client id (the ID column)' } },
    async run(ctx) {
      const id = ctx.flag('id') ?? ctx.args.positionals[0];
      if (!id) throw new UsageError('give the OAuth client as --id ID');
      await ctx.client().delete(`/api/v1/oauth-client/${encodeURIComponent(id)}`);
      return ctx.format === 'table' ? `deleted OAuth client ${id}` : renderObject(ctx.format, { deleted: id });
    },
  },
];
