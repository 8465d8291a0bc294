/**
 * Who may do what: the four roles an API key (and so a console session) carries, the areas of the tailnet each
 * may change, and which area every state-changing admin API v1 route touches. Reading is open to every role;
 * the admin API and the console both ask this module, so a role means the same thing everywhere.
 */
import { roles, type Role } from '../domain/roles.ts';

/** What a write changes. */
export type Area = 'policy' | 'dns' | 'routes' | 'ssh-checks' | 'users' | 'machines' | 'keys' | 'apikeys';

const writable: Record<Role, readonly Area[]> = {
  admin: ['policy', 'dns', 'routes', 'ssh-checks', 'users', 'machines', 'keys', 'apikeys'],
  // Deciding a held SSH session is access control, the network team's: the policy's check rules are theirs.
  'network-admin': ['policy', 'dns', 'routes', 'ssh-checks'],
  'it-admin': ['users', 'machines', 'keys'],
  auditor: [],
};

export function mayWrite(role: Role, area: Area): boolean {
  return writable[role].includes(area);
}

/** The 403 message, naming the role and what it would need. */
export function forbidden(role: Role, area: Area): string {
  const who = roles.filter((r) => mayWrite(r, area)).join(' or ');
  return `forbidden: the ${role} role may not change ${area} (needs ${who})`;
}

/**
 * The area a state-changing /api/v1 route writes, by method and route pattern; undefined for reads (GET, and
 * the POSTs that only check or compare a policy). A write route missing here is refused to all but admin.
 */
const apiV1Writes: Record<string, Area> = {
  'POST /api/v1/user': 'users',
  'POST /api/v1/user/:oldId/rename/:newName': 'users',
  'PUT /api/v1/user/:id': 'users',
  'DELETE /api/v1/user/:id': 'users',
  'POST /api/v1/preauthkey': 'keys',
  'POST /api/v1/preauthkey/expire': 'keys',
  'DELETE /api/v1/preauthkey': 'keys',
  'POST /api/v1/apikey': 'apikeys',
  'POST /api/v1/apikey/expire': 'apikeys',
  'DELETE /api/v1/apikey/:prefix': 'apikeys',
  'POST /api/v1/node/:id/rename/:newName': 'machines',
  'POST /api/v1/node/:id/tags': 'machines',
  'POST /api/v1/node/:id/expire': 'machines',
  'DELETE /api/v1/node/:id': 'machines',
  'POST /api/v1/auth/register': 'machines',
  'POST /api/v1/node/:id/approve_routes': 'routes',
  'PUT /api/v1/policy': 'policy',
  'PUT /api/v1/dns': 'dns',
  'POST /api/v1/ssh/checks/:id/approve': 'ssh-checks',
  'POST /api/v1/ssh/checks/:id/deny': 'ssh-checks',
};
const apiV1Reads = new Set(['POST /api/v1/policy/check', 'POST /api/v1/policy/diff']);

/** Why `role` may not call this admin API v1 route, or null when it may. */
export function apiV1Denial(role: Role, method: string, routeUrl: string): string | null {
  const route = `${method} ${routeUrl}`;
  if (method === 'GET' || method === 'HEAD' || apiV1Reads.has(route)) return null;
  const area = apiV1Writes[route];
  if (area === undefined) return role === 'admin' ? null : `forbidden: only the admin role may call ${route}`;
  return mayWrite(role, area) ? null : forbidden(role, area);
}
