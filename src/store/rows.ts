/**
 * The tailnet's records as table rows, shared by the SQLite and PostgreSQL stores: the two schemas have the same
 * tables and columns, so one mapping each way serves both (parameters carry booleans as 0/1, which both accept).
 */
import type { ApiKey, Node, OAuthClient, OAuthToken, PreAuthKey, SshCheck, User } from '../domain/types.ts';
import type { AuditEntry } from '../audit/chain.ts';
import type { Hashed, StoredTailnet } from './store.ts';

export type Row = Record<string, unknown>;

export const json = (v: unknown) => JSON.stringify(v);
/** SQLite stores booleans as 0/1, PostgreSQL as booleans. */
const bool = (v: unknown) => v === 1 || v === true;

export function userFromRow(r: Row): User {
  return {
    id: r.id as number,
    name: r.name as string,
    displayName: r.display_name as string,
    email: r.email as string,
    createdAt: r.created_at as string,
    ...(r.provider_id ? { providerId: r.provider_id as string } : {}),
    ...(r.idp_groups && r.idp_groups !== '[]' ? { idpGroups: JSON.parse(r.idp_groups as string) } : {}),
  };
}

export function nodeFromRow(r: Row): Node {
  return {
    id: r.id as number,
    machineKey: r.machine_key as string,
    nodeKey: r.node_key as string,
    discoKey: r.disco_key as string,
    ipv4: r.ipv4 as string,
    ipv6: r.ipv6 as string,
    hostname: r.hostname as string,
    givenName: r.given_name as string,
    userId: (r.user_id as number | null) ?? null,
    tags: JSON.parse(r.tags as string),
    hostinfo: JSON.parse(r.hostinfo as string),
    endpoints: JSON.parse(r.endpoints as string),
    expiry: (r.expiry as string | null) ?? null,
    lastSeen: (r.last_seen as string | null) ?? null,
    createdAt: r.created_at as string,
    registerMethod: r.register_method as Node['registerMethod'],
    ephemeral: bool(r.ephemeral),
    availableRoutes: JSON.parse(r.available_routes as string),
    approvedRoutes: JSON.parse(r.approved_routes as string),
  };
}

export function preAuthKeyFromRow(r: Row): Hashed<PreAuthKey> {
  return {
    hash: r.hash as string,
    record: {
      id: r.id as number,
      prefix: r.prefix as string,
      userId: (r.user_id as number | null) ?? null,
      reusable: bool(r.reusable),
      ephemeral: bool(r.ephemeral),
      used: bool(r.used),
      tags: JSON.parse(r.tags as string),
      expiration: (r.expiration as string | null) ?? null,
      createdAt: r.created_at as string,
      description: r.description as string,
    },
  };
}

export function oauthClientFromRow(r: Row): Hashed<OAuthClient> {
  return {
    hash: r.hash as string,
    record: {
      id: r.id as number,
      prefix: r.prefix as string,
      scopes: JSON.parse(r.scopes as string),
      description: r.description as string,
      createdAt: r.created_at as string,
    },
  };
}

export function oauthTokenFromRow(r: Row): Hashed<OAuthToken> {
  return {
    hash: r.hash as string,
    record: {
      id: r.id as number,
      prefix: r.prefix as string,
      clientId: r.client_id as number,
      scopes: JSON.parse(r.scopes as string),
      expiresAt: r.expires_at as string,
    },
  };
}

export function apiKeyFromRow(r: Row): Hashed<ApiKey> {
  return {
    hash: r.hash as string,
    record: {
      id: r.id as number,
      prefix: r.prefix as string,
      role: r.role as ApiKey['role'],
      expiration: (r.expiration as string | null) ?? null,
      lastSeen: (r.last_seen as string | null) ?? null,
      createdAt: r.created_at as string,
    },
  };
}

export function sshCheckFromRow(r: Row): SshCheck {
  return {
    id: r.id as string,
    srcNodeId: r.src_node_id as number,
    srcNode: r.src_node as string,
    srcUserId: r.src_user_id as number,
    srcUser: r.src_user as string,
    dstNodeId: r.dst_node_id as number,
    dstNode: r.dst_node as string,
    sshUser: r.ssh_user as string,
    localUser: r.local_user as string,
    state: r.state as SshCheck['state'],
    periodMs: r.period_ms as number,
    createdAt: r.created_at as string,
    deadline: r.deadline as string,
    decidedAt: (r.decided_at as string | null) ?? null,
    decidedBy: (r.decided_by as string | null) ?? null,
    validUntil: (r.valid_until as string | null) ?? null,
  };
}

export function sshCheckParams(c: SshCheck) {
  return {
    id: c.id,
    src_node_id: c.srcNodeId,
    src_node: c.srcNode,
    src_user_id: c.srcUserId,
    src_user: c.srcUser,
    dst_node_id: c.dstNodeId,
    dst_node: c.dstNode,
    ssh_user: c.sshUser,
    local_user: c.localUser,
    state: c.state,
    period_ms: c.periodMs,
    created_at: c.createdAt,
    deadline: c.deadline,
    decided_at: c.decidedAt,
    decided_by: c.decidedBy,
    valid_until: c.validUntil,
  };
}

export function nodeParams(n: Omit<Node, 'id'>) {
  return {
    machine_key: n.machineKey,
    node_key: n.nodeKey,
    disco_key: n.discoKey,
    ipv4: n.ipv4,
    ipv6: n.ipv6,
    hostname: n.hostname,
    given_name: n.givenName,
    user_id: n.userId,
    tags: json(n.tags),
    hostinfo: json(n.hostinfo),
    endpoints: json(n.endpoints),
    expiry: n.expiry,
    last_seen: n.lastSeen,
    created_at: n.createdAt,
    register_method: n.registerMethod,
    ephemeral: n.ephemeral ? 1 : 0,
    available_routes: json(n.availableRoutes),
    approved_routes: json(n.approvedRoutes),
  };
}

export function preAuthKeyParams(k: Omit<PreAuthKey, 'id'>) {
  return {
    prefix: k.prefix,
    user_id: k.userId,
    reusable: k.reusable ? 1 : 0,
    ephemeral: k.ephemeral ? 1 : 0,
    used: k.used ? 1 : 0,
    tags: json(k.tags),
    expiration: k.expiration,
    created_at: k.createdAt,
    description: k.description,
  };
}

export function userParams(u: Omit<User, 'id'>) {
  return { name: u.name, display_name: u.displayName, email: u.email, created_at: u.createdAt, provider_id: u.providerId ?? null, idp_groups: json(u.idpGroups ?? []) };
}

export function apiKeyParams(k: Omit<ApiKey, 'id'>) {
  return { prefix: k.prefix, role: k.role, expiration: k.expiration, last_seen: k.lastSeen, created_at: k.createdAt };
}

export function oauthClientParams(c: Omit<OAuthClient, 'id'>) {
  return { prefix: c.prefix, scopes: json(c.scopes), description: c.description, created_at: c.createdAt };
}

export function oauthTokenParams(t: Omit<OAuthToken, 'id'>) {
  return { prefix: t.prefix, client_id: t.clientId, scopes: json(t.scopes), expires_at: t.expiresAt };
}


/** The queries that load the tailnet, by the StoredTailnet field they fill. */
export function loadQueries(hourAgo: string) {
  return {
    users: 'SELECT * FROM users ORDER BY id',
    nodes: 'SELECT * FROM nodes ORDER BY id',
    preAuthKeys: 'SELECT * FROM pre_auth_keys ORDER BY id',
    apiKeys: 'SELECT * FROM api_keys ORDER BY id',
    oauthClients: 'SELECT * FROM oauth_clients ORDER BY id',
    oauthTokens: 'SELECT * FROM oauth_tokens ORDER BY id',
    settings: 'SELECT key, value FROM settings',
    // Open checks, plus those decided within the hour, whose destination may still be polling for the outcome.
    sshChecks: `SELECT * FROM ssh_checks WHERE state = 'pending' OR valid_until IS NOT NULL OR decided_at > ${hourAgo} ORDER BY created_at`,
  };
}

/** Loads the tailnet with `all` running each of loadQueries(hourAgo); `hourAgo` is the dialect's "an hour ago" as RFC 3339 text. */
export function tailnetFromRows(all: (sql: string) => Row[], hourAgo: string): StoredTailnet {
  const q = loadQueries(hourAgo);
  return tailnetOf((k) => all(q[k]));
}

/** Maps the rows of each load query to the tailnet's records. */
export function tailnetOf(rows: (key: keyof ReturnType<typeof loadQueries>) => Row[]): StoredTailnet {
  const settings: Record<string, unknown> = {};
  for (const r of rows('settings')) settings[r.key as string] = JSON.parse(r.value as string);
  return {
    users: rows('users').map(userFromRow),
    nodes: rows('nodes').map(nodeFromRow),
    preAuthKeys: rows('preAuthKeys').map(preAuthKeyFromRow),
    apiKeys: rows('apiKeys').map(apiKeyFromRow),
    oauthClients: rows('oauthClients').map(oauthClientFromRow),
    oauthTokens: rows('oauthTokens').map(oauthTokenFromRow),
    settings,
    sshChecks: rows('sshChecks').map(sshCheckFromRow),
  };
}

export const entryFromRow = (r: Row): AuditEntry => ({
  id: r.id as number,
  time: r.time as string,
  actor: r.actor as string,
  door: r.door as AuditEntry['door'],
  source: r.source as string,
  action: r.action as string,
  object: r.object as string,
  summary: r.summary as string,
  prevHash: r.prev_hash as string,
  hash: r.hash as string,
});
