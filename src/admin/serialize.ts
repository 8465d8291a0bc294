/**
 * The admin API's JSON shapes, following Headscale's /api/v1 (camelCase, ids as strings, RFC 3339 times).
 */
import { servingRoutes } from '../domain/routes.ts';
import type { ApiApiKey, ApiNode, ApiPreAuthKey, ApiUser } from '../domain/api.ts';
import type { ApiKey, Node, PreAuthKey, User } from '../domain/types.ts';
import type { Tailnet } from '../state/tailnet.ts';

export function userJson(u: User): ApiUser {
  return {
    id: String(u.id),
    name: u.name,
    createdAt: u.createdAt,
    displayName: u.displayName,
    email: u.email,
    providerId: '',
    provider: '',
    profilePicUrl: '',
  };
}

const registerMethods = {
  authkey: 'REGISTER_METHOD_AUTH_KEY',
  interactive: 'REGISTER_METHOD_CLI',
  cli: 'REGISTER_METHOD_CLI',
} as const;

export function nodeJson(n: Node, t: Tailnet): ApiNode {
  const user = n.userId !== null ? t.users.get(n.userId) : null;
  return {
    id: String(n.id),
    machineKey: n.machineKey,
    nodeKey: n.nodeKey,
    discoKey: n.discoKey,
    ipAddresses: [n.ipv4, n.ipv6],
    name: n.hostname,
    givenName: n.givenName,
    user: user ? userJson(user) : null,
    tags: n.tags,
    lastSeen: n.lastSeen,
    expiry: n.expiry,
    expired: n.expiry !== null && Date.parse(n.expiry) <= Date.now(),
    createdAt: n.createdAt,
    registerMethod: registerMethods[n.registerMethod],
    ephemeral: n.ephemeral,
    online: t.nodes.isOnline(n.id),
    connected: t.nodes.isConnected(n.id),
    approvedRoutes: n.approvedRoutes,
    availableRoutes: n.availableRoutes,
    subnetRoutes: servingRoutes(n),
    os: typeof n.hostinfo.OS === 'string' ? n.hostinfo.OS : '',
    clientVersion: typeof n.hostinfo.IPNVersion === 'string' ? n.hostinfo.IPNVersion : '',
  };
}

export function preAuthKeyJson(k: PreAuthKey, t: Tailnet, fullKey?: string): ApiPreAuthKey {
  const user = k.userId !== null ? t.users.get(k.userId) : null;
  return {
    id: String(k.id),
    key: fullKey ?? `tpkey-auth-${k.prefix}-***`,
    user: user ? userJson(user) : null,
    reusable: k.reusable,
    ephemeral: k.ephemeral,
    used: k.used,
    expiration: k.expiration,
    createdAt: k.createdAt,
    aclTags: k.tags,
  };
}

export function apiKeyJson(k: ApiKey): ApiApiKey {
  return { id: String(k.id), prefix: k.prefix, role: k.role, expiration: k.expiration, createdAt: k.createdAt, lastSeen: k.lastSeen };
}
