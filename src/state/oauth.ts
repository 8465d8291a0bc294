/**
 * OAuth clients (client credentials for API v2) and the access tokens they obtain: the client secret is shown
 * once and stored hashed, a token lives one hour and carries a subset of its client's scopes; deleting a
 * client revokes its tokens.
 */
import type { OAuthClient, OAuthToken } from '../domain/types.ts';
import { scopeAllows, unknownScope, type Scope } from '../domain/scopes.ts';
import type { Core } from './core.ts';
import { invalid, notFound, StateError } from './errors.ts';
import { newSecret, secretMatches, splitSecret } from './secrets.ts';

/** Access token lifetime: Tailscale's one hour. */
export const tokenLifetimeSeconds = 3600;

const checkScopes = (scopes: readonly string[]) => {
  if (scopes.length === 0) throw invalid('give at least one scope, e.g. devices:core:read');
  const bad = unknownScope(scopes);
  if (bad !== undefined) throw invalid(`unknown scope "${bad}"`);
};

export function createOAuthClients(core: Core, now: () => Date) {
  const { ix } = core;
  const get = (id: number) => {
    const c = ix.oauthClients.get(id);
    if (!c) throw notFound(`OAuth client ${id} not found`);
    return c;
  };
  const byClientId = (clientId: string) => [...ix.oauthClients.values()].find((c) => c.record.prefix === clientId);
  return {
    list: (): OAuthClient[] => [...ix.oauthClients.values()].map((c) => c.record),
    get: (id: number) => get(id).record,
    /** Creates a client; `secret` is the only copy of its secret. */
    create(input: { scopes: readonly string[]; description?: string }): { secret: string; record: OAuthClient } {
      const scopes = [...new Set(input.scopes)];
      checkScopes(scopes);
      const secret = newSecret('tpkey-client');
      const fields = { prefix: secret.prefix, scopes, description: input.description ?? '', createdAt: now().toISOString() };
      return core.write((tx) => {
        const record = { id: tx.insertOAuthClient(fields, secret.hash), ...fields };
        return {
          result: { secret: secret.key, record },
          apply: () => ix.oauthClients.set(record.id, { record, hash: secret.hash }),
          audit: [{ action: 'oauth-client.create', object: `oauth-client:${record.id}`, summary: `${record.prefix} → scopes ${scopes.join(',')}` }],
        };
      });
    },
    remove(id: number): void {
      const { record } = get(id);
      const tokens = [...ix.oauthTokens.values()].filter((t) => t.record.clientId === id);
      core.write((tx) => {
        tx.deleteOAuthClient(id);
        return {
          result: undefined,
          apply: () => {
            ix.oauthClients.delete(id);
            for (const t of tokens) ix.oauthTokens.delete(t.record.id); // ON DELETE CASCADE in the store
          },
          audit: [{ action: 'oauth-client.delete', object: `oauth-client:${id}`, summary: `${record.prefix} →` }],
        };
      });
    },
    /**
     * Client credentials grant: checks the client id and secret and issues a token for the requested scopes
     * (all of the client's when none are asked for). Refuses a scope the client was not granted.
     */
    issueToken(clientId: string, clientSecret: string, requested: readonly string[]): { token: string; record: OAuthToken } {
      const client = byClientId(clientId);
      const parts = splitSecret('tpkey-client', clientSecret);
      if (!client || !parts || parts.prefix !== clientId || !secretMatches(parts.secret, client.hash)) {
        throw new StateError('unauthorized', 'invalid OAuth client id or secret');
      }
      const refused = requested.find((s) => unknownScope([s]) !== undefined || !scopeAllows(client.record.scopes, s as Scope));
      if (refused !== undefined) throw invalid(`scope "${refused}" is not granted to OAuth client ${clientId}`);
      const secret = newSecret('tpkey-oauth');
      const at = now();
      const fields = {
        prefix: secret.prefix,
        clientId: client.record.id,
        scopes: requested.length > 0 ? [...new Set(requested)] : client.record.scopes,
        expiresAt: new Date(at.getTime() + tokenLifetimeSeconds * 1000).toISOString(),
      };
      const expired = [...ix.oauthTokens.values()].filter((t) => Date.parse(t.record.expiresAt) < at.getTime());
      return core.write((tx) => {
        // Issuing is the natural moment to forget tokens nobody can use any more.
        tx.deleteExpiredOAuthTokens(at.toISOString());
        const record = { id: tx.insertOAuthToken(fields, secret.hash), ...fields };
        return {
          result: { token: secret.key, record },
          apply: () => {
            for (const t of expired) ix.oauthTokens.delete(t.record.id);
            ix.oauthTokens.set(record.id, { record, hash: secret.hash });
          },
        };
      });
    },
    /** The token's record if it is valid and unexpired, else null. */
    authenticateToken(token: string): OAuthToken | null {
      const parts = splitSecret('tpkey-oauth', token);
      const found = parts && [...ix.oauthTokens.values()].find((t) => t.record.prefix === parts.prefix);
      if (!parts || !found || !secretMatches(parts.secret, found.hash)) return null;
      return Date.parse(found.record.expiresAt) > now().getTime() ? found.record : null;
    },
  };
}

export type OAuthClients = ReturnType<typeof createOAuthClients>;
