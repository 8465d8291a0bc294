/**
 * The roles an admin credential carries (API keys, console sessions) and what each amounts to in API v2's
 * scopes; src/auth/roles.ts says which writes each role may make through API v1 and the console.
 */
import type { Scope } from './scopes.ts';

export const roles = ['admin', 'network-admin', 'it-admin', 'auditor'] as const;
export type Role = (typeof roles)[number];

/** One line per role, for help texts and the console. */
export const roleSummaries: Record<Role, string> = {
  admin: 'everything',
  'network-admin': 'policy, DNS, routes and SSH checks',
  'it-admin': 'users, machines and keys',
  auditor: 'read-only',
};

export const isRole = (s: string): s is Role => (roles as readonly string[]).includes(s);

/** The API v2 scopes a role's API key holds: every role reads everything, and writes what its areas cover. */
export const roleScopes: Record<Role, readonly Scope[]> = {
  admin: ['all'],
  'network-admin': ['all:read', 'policy_file', 'dns', 'devices:routes'],
  'it-admin': ['all:read', 'devices:core', 'auth_keys', 'users'],
  auditor: ['all:read'],
};
