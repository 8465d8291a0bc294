/**
 * Who is calling and what they may do: one answer for every door (API v1, API v2, later the console).
 * An admin API key (as a Bearer token, or as the HTTP Basic user name the way Tailscale's clients send it)
 * holds the scopes of its role (src/domain/roles.ts; admin holds all); an OAuth access token holds the scopes
 * its client was granted and asked for.
 */
import { roleScopes } from '../domain/roles.ts';
import { scopeAllows, type Scope } from '../domain/scopes.ts';
import type { Tailnet } from '../state/tailnet.ts';

export type Principal =
  | { readonly kind: 'api-key'; readonly id: number; readonly scopes: readonly string[] }
  | { readonly kind: 'oauth'; readonly clientId: number; readonly scopes: readonly string[] };

/** Why a request carries no usable identity; the message is safe to show (it never echoes the secret). */
export type Refusal = { readonly refused: string };

/** The credential in an Authorization header: `Bearer <secret>` or `Basic base64(<secret>:)`. */
export function credentialOf(header: string | undefined): string | null {
  const m = /^(Bearer|Basic)\s+(\S+)$/i.exec(header ?? '');
  if (!m) return null;
  if (m[1]!.toLowerCase() === 'bearer') return m[2]!;
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return (colon < 0 ? decoded : decoded.slice(0, colon)) || null;
}

export function createAuthenticator(t: Tailnet) {
  return {
    /** The principal behind an Authorization header, or why there is none. */
    identify(header: string | undefined): Principal | Refusal {
      const secret = credentialOf(header);
      if (secret === null)
        return { refused: 'missing credentials: send the API key as "Authorization: Bearer <key>" or as the Basic auth user' };
      const key = t.apiKeys.authenticate(secret);
      if (key) return { kind: 'api-key', id: key.id, scopes: roleScopes[key.role] };
      const token = t.oauthClients.authenticateToken(secret);
      if (token) return { kind: 'oauth', clientId: token.clientId, scopes: token.scopes };
      return { refused: 'invalid, expired or revoked API key or access token' };
    },
  };
}

/** How the audit log names a principal: the key's or client's public prefix, never its secret. */
export function actorOf(t: Tailnet, p: Principal): string {
  if (p.kind === 'api-key') return `apikey:${t.apiKeys.list().find((k) => k.id === p.id)?.prefix ?? p.id}`;
  return `oauth-client:${t.oauthClients.get(p.clientId).prefix}`;
}

export type Authenticator = ReturnType<typeof createAuthenticator>;

export const isRefusal = (p: Principal | Refusal): p is Refusal => 'refused' in p;

/** True when the principal may do what needs `scope`. */
export const may = (p: Principal, scope: Scope): boolean => scopeAllows(p.scopes, scope);
