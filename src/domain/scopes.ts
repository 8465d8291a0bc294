/**
 * The access scopes of API v2 (Tailscale's names): a write scope includes its `:read` half, `all` includes
 * every scope and `all:read` every read scope. OAuth clients are granted scopes; API keys hold their role's (src/domain/roles.ts).
 */

/** Resource scopes tailplane serves; each also exists as `<name>:read`. */
export const resourceScopes = ['devices:core', 'devices:routes', 'dns', 'policy_file', 'auth_keys', 'users'] as const;

export type Scope = (typeof resourceScopes)[number] | `${(typeof resourceScopes)[number]}:read` | 'all' | 'all:read';

export const knownScopes: readonly string[] = ['all', 'all:read', ...resourceScopes.flatMap((s) => [s, `${s}:read`])];

/** The first name that is not a known scope, or undefined when all are known. */
export function unknownScope(scopes: readonly string[]): string | undefined {
  return scopes.find((s) => !knownScopes.includes(s));
}

/** True when holding `granted` allows an operation that needs `needed`. */
export function scopeAllows(granted: readonly string[], needed: Scope): boolean {
  const read = needed === 'all:read' || needed.endsWith(':read');
  const base = read ? needed.slice(0, -':read'.length) : needed;
  return granted.some((g) => g === needed || g === 'all' || (read && (g === base || g === 'all:read')));
}
