/**
 * The SQLite schema as an append-only list of migrations: a released migration is never edited, only followed.
 */
export const migrations: readonly string[] = [
  // 1: the tailnet's objects.
  `
  CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
  );
  CREATE TABLE pre_auth_keys (
    id INTEGER PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    reusable INTEGER NOT NULL,
    ephemeral INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    expiration TEXT,
    created_at TEXT NOT NULL
  );
  CREATE TABLE nodes (
    id INTEGER PRIMARY KEY,
    machine_key TEXT NOT NULL UNIQUE,
    node_key TEXT NOT NULL UNIQUE,
    disco_key TEXT NOT NULL DEFAULT '',
    ipv4 TEXT NOT NULL UNIQUE,
    ipv6 TEXT NOT NULL UNIQUE,
    hostname TEXT NOT NULL,
    given_name TEXT NOT NULL UNIQUE,
    user_id INTEGER REFERENCES users(id) ON DELETE RESTRICT,
    tags TEXT NOT NULL DEFAULT '[]',
    hostinfo TEXT NOT NULL DEFAULT '{}',
    endpoints TEXT NOT NULL DEFAULT '[]',
    expiry TEXT,
    last_seen TEXT,
    created_at TEXT NOT NULL,
    register_method TEXT NOT NULL,
    ephemeral INTEGER NOT NULL DEFAULT 0,
    available_routes TEXT NOT NULL DEFAULT '[]',
    approved_routes TEXT NOT NULL DEFAULT '[]',
    -- A node is owned by a user or by tags, never both.
    CHECK ((user_id IS NULL) <> (tags = '[]'))
  );
  CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    expiration TEXT,
    last_seen TEXT,
    created_at TEXT NOT NULL
  );
  -- Tailnet-wide settings (policy, DNS) as JSON values.
  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  // 2: the role an API key carries (src/auth/roles.ts); keys made before roles existed stay admin.
  `ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';`,
  // 3: Tailscale SSH checks, kept after they are decided: the durable record of who approved, denied or let time out which session.
  `
  CREATE TABLE ssh_checks (
    id TEXT PRIMARY KEY,
    src_node_id INTEGER NOT NULL,
    src_node TEXT NOT NULL,
    src_user_id INTEGER NOT NULL,
    src_user TEXT NOT NULL,
    dst_node_id INTEGER NOT NULL,
    dst_node TEXT NOT NULL,
    ssh_user TEXT NOT NULL,
    local_user TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'timeout')),
    period_ms INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    deadline TEXT NOT NULL,
    decided_at TEXT,
    decided_by TEXT,
    valid_until TEXT
  );
  CREATE INDEX ssh_checks_open ON ssh_checks (state, valid_until);
  `,
  // 4: OAuth clients and the access tokens they obtain (API v2), and a description on pre-auth keys.
  `
  CREATE TABLE oauth_clients (
    id INTEGER PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
  );
  CREATE TABLE oauth_tokens (
    id INTEGER PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    client_id INTEGER NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    expires_at TEXT NOT NULL
  );
  ALTER TABLE pre_auth_keys ADD COLUMN description TEXT NOT NULL DEFAULT '';
  `,
  // 5: OIDC: the issuer+subject a user logs in as; unique so one identity never maps to two users.
  `
  ALTER TABLE users ADD COLUMN provider_id TEXT;
  CREATE UNIQUE INDEX users_provider_id ON users(provider_id) WHERE provider_id IS NOT NULL;
  `,
  // 6: the audit log (src/audit): append-only, hash-chained entries, and the anchor left by pruning.
  `
  CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    door TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    summary TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
  );
  CREATE INDEX audit_log_time ON audit_log (time);
  CREATE INDEX audit_log_object ON audit_log (object, id);
  CREATE TABLE audit_anchor (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    id INTEGER NOT NULL,
    hash TEXT NOT NULL
  );
  `,
  // 7: OIDC groups: what the IdP's groups claim said at the user's last login, a JSON list (see User.idpGroups).
  `
  ALTER TABLE users ADD COLUMN idp_groups TEXT NOT NULL DEFAULT '[]';
  `,
  // 8: node ids are never given again, as Tailscale's and PostgreSQL's (IDENTITY) are not: a plain INTEGER
  // PRIMARY KEY reuses the highest id once its node is deleted, so an ephemeral node leaving while another joined
  // came back to clients under the leaver's id, a replacement rather than a removal. AUTOINCREMENT needs the
  // table rebuilt (no table references nodes); ids deleted before this migration above the highest kept one
  // may still be reused once.
  `
  CREATE TABLE nodes_autoincrement (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    machine_key TEXT NOT NULL UNIQUE,
    node_key TEXT NOT NULL UNIQUE,
    disco_key TEXT NOT NULL DEFAULT '',
    ipv4 TEXT NOT NULL UNIQUE,
    ipv6 TEXT NOT NULL UNIQUE,
    hostname TEXT NOT NULL,
    given_name TEXT NOT NULL UNIQUE,
    user_id INTEGER REFERENCES users(id) ON DELETE RESTRICT,
    tags TEXT NOT NULL DEFAULT '[]',
    hostinfo TEXT NOT NULL DEFAULT '{}',
    endpoints TEXT NOT NULL DEFAULT '[]',
    expiry TEXT,
    last_seen TEXT,
    created_at TEXT NOT NULL,
    register_method TEXT NOT NULL,
    ephemeral INTEGER NOT NULL DEFAULT 0,
    available_routes TEXT NOT NULL DEFAULT '[]',
    approved_routes TEXT NOT NULL DEFAULT '[]',
    CHECK ((user_id IS NULL) <> (tags = '[]'))
  );
  INSERT INTO nodes_autoincrement SELECT * FROM nodes;
  DROP TABLE nodes;
  ALTER TABLE nodes_autoincrement RENAME TO nodes;
  `,
];
