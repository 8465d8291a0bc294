/**
 * The SQLite store (better-sqlite3): WAL, foreign keys, synchronous=FULL so an acknowledged write survives a
 * crash or power loss (soft writes: a crash only), and append-only migrations applied at open.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ApiKey, Node, OAuthClient, OAuthToken, PreAuthKey, SshCheck, User } from '../domain/types.ts';
import { migrations } from './migrations.ts';
import { sqliteAudit } from './sqlite-audit.ts';
import type { Hashed, Store, StoredTailnet, StoreTx } from './store.ts';

type Row = Record<string, unknown>;

/** The database's file name inside the data dir. */
export const databaseFileName = 'tailplane.sqlite';

export function openSqliteStore(path: string): Store {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  const audit = sqliteAudit(db);
  const tx = createTx(db, audit.append);
  return {
    audit: audit.store,
    load: () => loadAll(db),
    write: (fn, opts) => {
      // SQLite refuses to change the safety level inside a transaction: a write inside a batch is durable.
      if (!opts?.soft || db.inTransaction) return db.transaction(() => fn(tx))();
      // WAL with synchronous=NORMAL commits without an fsync; the connection goes back to FULL right after.
      db.pragma('synchronous = NORMAL');
      try {
        return db.transaction(() => fn(tx))();
      } finally {
        db.pragma('synchronous = FULL');
      }
    },
    transaction: (fn) => db.transaction(fn)(),
    healthy: () => {
      try {
        return db.prepare('SELECT 1 AS ok').get() !== undefined;
      } catch {
        return false;
      }
    },
    // SQLite's online backup API, a few pages per event-loop turn; writes through this same connection
    // during the copy are applied to it rather than restarting it.
    backup: async (path) => {
      await db.backup(path);
    },
    close: () => db.close(),
  };
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  const current = row.v ?? 0;
  if (current > migrations.length) {
    throw new Error(`database schema version ${current} is newer than this tailplane (${migrations.length})`);
  }
  for (let v = current + 1; v <= migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v - 1]!);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(v, new Date().toISOString());
    })();
  }
}

const json = (v: unknown) => JSON.stringify(v);
const bool = (v: unknown) => v === 1;

function userFromRow(r: Row): User {
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

function nodeFromRow(r: Row): Node {
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

function preAuthKeyFromRow(r: Row): Hashed<PreAuthKey> {
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

function oauthClientFromRow(r: Row): Hashed<OAuthClient> {
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

function oauthTokenFromRow(r: Row): Hashed<OAuthToken> {
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

function apiKeyFromRow(r: Row): Hashed<ApiKey> {
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

function loadAll(db: Database.Database): StoredTailnet {
  const all = (sql: string) => db.prepare(sql).all() as Row[];
  const settings: Record<string, unknown> = {};
  for (const r of all('SELECT key, value FROM settings')) settings[r.key as string] = JSON.parse(r.value as string);
  return {
    users: all('SELECT * FROM users ORDER BY id').map(userFromRow),
    nodes: all('SELECT * FROM nodes ORDER BY id').map(nodeFromRow),
    preAuthKeys: all('SELECT * FROM pre_auth_keys ORDER BY id').map(preAuthKeyFromRow),
    apiKeys: all('SELECT * FROM api_keys ORDER BY id').map(apiKeyFromRow),
    oauthClients: all('SELECT * FROM oauth_clients ORDER BY id').map(oauthClientFromRow),
    oauthTokens: all('SELECT * FROM oauth_tokens ORDER BY id').map(oauthTokenFromRow),
    settings,
    // Open checks, plus those decided within the hour, whose destination may still be polling for the outcome.
    sshChecks: all(
      `SELECT * FROM ssh_checks WHERE state = 'pending' OR valid_until IS NOT NULL
         OR decided_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour') ORDER BY created_at`,
    ).map(sshCheckFromRow),
  };
}

function sshCheckFromRow(r: Row): SshCheck {
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

function sshCheckParams(c: SshCheck) {
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

function nodeParams(n: Omit<Node, 'id'>) {
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

function preAuthKeyParams(k: Omit<PreAuthKey, 'id'>) {
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

/**
 * INSERT, UPDATE and DELETE for one table, built from its column list so each column is named once.
 * `insertOnly` columns (secret hashes) are written at insert and never updated.
 */
function statements(db: Database.Database, table: string, columns: string[], insertOnly: string[] = []) {
  const insertColumns = [...columns, ...insertOnly];
  const insert = db.prepare(
    `INSERT INTO ${table} (${insertColumns.join(', ')}) VALUES (${insertColumns.map((c) => '@' + c).join(', ')})`,
  );
  const update = db.prepare(`UPDATE ${table} SET ${columns.map((c) => `${c} = @${c}`).join(', ')} WHERE id = @id`);
  const remove = db.prepare(`DELETE FROM ${table} WHERE id = ?`);
  return {
    insert: (params: Row) => Number(insert.run(params).lastInsertRowid),
    update: (id: number, params: Row) => {
      if (update.run({ ...params, id }).changes !== 1) throw new Error(`${table} ${id} not found`);
    },
    remove: (id: number) => {
      remove.run(id);
    },
  };
}

function userParams(u: Omit<User, 'id'>) {
  return { name: u.name, display_name: u.displayName, email: u.email, created_at: u.createdAt, provider_id: u.providerId ?? null, idp_groups: json(u.idpGroups ?? []) };
}

function apiKeyParams(k: Omit<ApiKey, 'id'>) {
  return { prefix: k.prefix, role: k.role, expiration: k.expiration, last_seen: k.lastSeen, created_at: k.createdAt };
}

function oauthClientParams(c: Omit<OAuthClient, 'id'>) {
  return { prefix: c.prefix, scopes: json(c.scopes), description: c.description, created_at: c.createdAt };
}

function oauthTokenParams(t: Omit<OAuthToken, 'id'>) {
  return { prefix: t.prefix, client_id: t.clientId, scopes: json(t.scopes), expires_at: t.expiresAt };
}

function createTx(db: Database.Database, appendAudit: StoreTx['appendAudit']): StoreTx {
  const columnsOf = (params: (x: never) => Row) => Object.keys(params({} as never));
  const users = statements(db, 'users', columnsOf(userParams));
  const nodes = statements(db, 'nodes', columnsOf(nodeParams));
  const preAuth = statements(db, 'pre_auth_keys', columnsOf(preAuthKeyParams), ['hash']);
  const apiKeys = statements(db, 'api_keys', columnsOf(apiKeyParams), ['hash']);
  const sshColumns = Object.keys(sshCheckParams({} as SshCheck));
  const putSshCheck = db.prepare(`INSERT OR REPLACE INTO ssh_checks (${sshColumns.join(', ')}) VALUES (${sshColumns.map((c) => '@' + c).join(', ')})`);
  const oauthClients = statements(db, 'oauth_clients', columnsOf(oauthClientParams), ['hash']);
  const oauthTokens = statements(db, 'oauth_tokens', columnsOf(oauthTokenParams), ['hash']);
  const deleteExpiredTokens = db.prepare('DELETE FROM oauth_tokens WHERE expires_at < ?');
  const putSetting = db.prepare(
    'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
  );
  return {
    insertUser: (u) => users.insert(userParams(u)),
    updateUser: (u) => users.update(u.id, userParams(u)),
    deleteUser: (id) => users.remove(id),
    insertNode: (n) => nodes.insert(nodeParams(n)),
    updateNode: (n) => nodes.update(n.id, nodeParams(n)),
    deleteNode: (id) => nodes.remove(id),
    insertPreAuthKey: (k, hash) => preAuth.insert({ ...preAuthKeyParams(k), hash }),
    updatePreAuthKey: (k) => preAuth.update(k.id, preAuthKeyParams(k)),
    deletePreAuthKey: (id) => preAuth.remove(id),
    insertApiKey: (k, hash) => apiKeys.insert({ ...apiKeyParams(k), hash }),
    updateApiKey: (k) => apiKeys.update(k.id, apiKeyParams(k)),
    deleteApiKey: (id) => apiKeys.remove(id),
    insertOAuthClient: (c, hash) => oauthClients.insert({ ...oauthClientParams(c), hash }),
    deleteOAuthClient: (id) => oauthClients.remove(id),
    insertOAuthToken: (t, hash) => oauthTokens.insert({ ...oauthTokenParams(t), hash }),
    deleteExpiredOAuthTokens: (now) => {
      deleteExpiredTokens.run(now);
    },
    putSetting: (key, value) => {
      putSetting.run(key, json(value));
    },
    putSshCheck: (c) => {
      putSshCheck.run(sshCheckParams(c));
    },
    appendAudit,
  };
}
