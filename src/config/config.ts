/**
 * Server configuration: embedded defaults, then a YAML or HuJSON file, then TAILPLANE_* environment overrides;
 * every value is checked, and a bad one is reported with its key and value.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { extname, resolve } from 'node:path';
import JSON5 from 'json5';
import YAML from 'yaml';
import { cidrContains } from '../net/ip.ts';
import { isRole, roles } from '../domain/roles.ts';

export interface Config {
  /** The URL clients use (`tailscale up --login-server`). */
  serverUrl: string;
  /** host:port the HTTP server listens on (control, DERP, admin API). */
  listenAddr: string;
  dataDir: string;
  prefixes: { v4: string; v6: string; allocation: 'sequential' | 'random' };
  dns: { magicDns: boolean; baseDomain: string; nameservers: string[]; overrideLocalDns: boolean; searchDomains: string[] };
  derp: {
    /** Run the embedded DERP relay on the listen address and advertise it. */
    enabled: boolean;
    regionId: number;
    regionCode: string;
    /** UDP STUN listen address; empty disables STUN. */
    stunListenAddr: string;
    /** Serve this DERP map file (JSON) instead of, or in addition to, the embedded region. */
    mapPath: string;
    /**
     * Where clients reach this server's relay directly (with replicas, each one's own address, not the load
     * balancer's); empty or absent means server_url.
     */
    url?: string;
  };
  certs: {
    /**
     * host:port of the embedded authoritative DNS responder (UDP and TCP) that serves the ACME DNS-01 challenge
     * records clients publish with /machine/set-dns; "" (the default) turns HTTPS certificates off.
     */
    dnsListenAddr: string;
  };
  node: {
    /** Default key expiry for user-owned nodes, in seconds; 0 = never. Tagged nodes never expire by default. */
    expirySeconds: number;
    /** How long an ephemeral node may stay disconnected before it is deleted, in seconds. */
    ephemeralInactivitySeconds: number;
  };
  ssh: {
    /** How long a Tailscale SSH "check" session waits for approval before it fails, in seconds. */
    checkTimeoutSeconds: number;
  };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent' };
  /** Audit log entries older than this many days are pruned (the chain stays verifiable); 0 keeps all. */
  audit: { retentionDays: number };
  /** Continuous sync inside `serve`: on when `git` or `file` is set (see `tailplane sync`). */
  sync: {
    git: string;
    ref: string;
    path: string;
    file: string;
    interval: string;
    mode: 'enforce' | 'report';
    webhookUrl: string;
    /** File holding the webhook's HMAC secret (or TAILPLANE_SYNC_WEBHOOK_SECRET). */
    webhookSecretFile: string;
    /** The admin API key sync uses; default the bootstrap key in data_dir. */
    apiKeyFile: string;
  };
  /** host:port of the Prometheus /metrics listener; empty turns metrics off. */
  metrics: { listenAddr: string };
  /** OpenID Connect login for machines (see src/oidc); off while `issuer` is empty. */
  oidc: OidcConfig;
  /** Where the tailnet is stored: SQLite in data_dir (the default), or PostgreSQL (several replicas may share it). */
  store: StoreConfig;
}

export interface StoreConfig {
  type: 'sqlite' | 'postgres';
  postgres: {
    /** postgres://user@host:port/db; a password is better left to PGPASSWORD or ~/.pgpass than put here. */
    url: string;
    /** Connections this server may open. */
    poolSize: number;
    /** How long a store call may wait for PostgreSQL before it fails with 503 (a duration: 5s). */
    timeout: string;
    tls: 'off' | 'require' | 'verify-full';
    /** PEM file of the CA that signs the server's certificate (verify-full); default the system's CAs. */
    caFile: string;
  };
}

export interface OidcConfig {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** File holding the client secret (instead of `client_secret`, which would sit in the config file). */
  clientSecretPath: string;
  scopes: string[];
  /** Extra query parameters for the authorization request (e.g. `domain_hint`, `prompt`). */
  extraParams: Record<string, string>;
  allowedDomains: string[];
  allowedUsers: string[];
  allowedGroups: string[];
  emailVerifiedRequired: boolean;
  pkce: boolean;
  /** `from_token` (the ID token's exp) or a duration such as `180d`, `12h` for the node key expiry. */
  expiry: string;
  groupsClaim: string;
  /**
   * Whether the groups claim makes people members of the policy's groups of the same name (`group:<name>`),
   * refreshed at each login; off by default, so an IdP cannot widen access unless the operator says so.
   */
  policyGroups: boolean;
  /** IdP group -> console role; a person in none of these groups cannot log in to the console. */
  consoleRoles: Record<string, string>;
}

export class ConfigError extends Error {}

export function defaultConfig(): Config {
  return {
    serverUrl: 'http://127.0.0.1:8080',
    listenAddr: '127.0.0.1:8080',
    dataDir: './data',
    prefixes: { v4: '100.64.0.0/10', v6: 'fd7a:115c:a1e0::/48', allocation: 'sequential' },
    dns: { magicDns: true, baseDomain: 'tailnet.internal', nameservers: ['1.1.1.1'], overrideLocalDns: true, searchDomains: [] },
    derp: { enabled: true, regionId: 999, regionCode: 'tailplane', stunListenAddr: '127.0.0.1:3478', mapPath: '', url: '' },
    certs: { dnsListenAddr: '' },
    node: { expirySeconds: 0, ephemeralInactivitySeconds: 120 },
    ssh: { checkTimeoutSeconds: 600 },
    log: { level: 'info' },
    audit: { retentionDays: 0 },
    sync: { git: '', ref: 'main', path: '', file: '', interval: '1m', mode: 'enforce', webhookUrl: '', webhookSecretFile: '', apiKeyFile: '' },
    metrics: { listenAddr: '127.0.0.1:9090' },
    oidc: {
      issuer: '',
      clientId: '',
      clientSecret: '',
      clientSecretPath: '',
      scopes: ['openid', 'profile', 'email'],
      extraParams: {},
      allowedDomains: [],
      allowedUsers: [],
      allowedGroups: [],
      emailVerifiedRequired: true,
      pkce: true,
      expiry: 'from_token',
      groupsClaim: 'groups',
      policyGroups: false,
      consoleRoles: {},
    },
    store: { type: 'sqlite', postgres: { url: '', poolSize: 10, timeout: '5s', tls: 'off', caFile: '' } },
  };
}

/** File keys are snake_case like headscale's config; they map onto the camelCase Config. */
const fileKeys: Record<string, string> = {
  server_url: 'serverUrl',
  listen_addr: 'listenAddr',
  data_dir: 'dataDir',
  prefixes: 'prefixes',
  'prefixes.v4': 'v4',
  'prefixes.v6': 'v6',
  'prefixes.allocation': 'allocation',
  dns: 'dns',
  'dns.magic_dns': 'magicDns',
  'dns.base_domain': 'baseDomain',
  'dns.nameservers': 'nameservers',
  'dns.override_local_dns': 'overrideLocalDns',
  'dns.search_domains': 'searchDomains',
  derp: 'derp',
  'derp.enabled': 'enabled',
  'derp.region_id': 'regionId',
  'derp.region_code': 'regionCode',
  'derp.stun_listen_addr': 'stunListenAddr',
  'derp.map_path': 'mapPath',
  'derp.url': 'url',
  certs: 'certs',
  'certs.dns_listen_addr': 'dnsListenAddr',
  node: 'node',
  'node.expiry_seconds': 'expirySeconds',
  'node.ephemeral_inactivity_seconds': 'ephemeralInactivitySeconds',
  ssh: 'ssh',
  'ssh.check_timeout_seconds': 'checkTimeoutSeconds',
  log: 'log',
  'log.level': 'level',
  audit: 'audit',
  'audit.retention_days': 'retentionDays',
  sync: 'sync',
  'sync.git': 'git',
  'sync.ref': 'ref',
  'sync.path': 'path',
  'sync.file': 'file',
  'sync.interval': 'interval',
  'sync.mode': 'mode',
  'sync.webhook_url': 'webhookUrl',
  'sync.webhook_secret_file': 'webhookSecretFile',
  'sync.api_key_file': 'apiKeyFile',
  metrics: 'metrics',
  'metrics.listen_addr': 'listenAddr',
  oidc: 'oidc',
  'oidc.issuer': 'issuer',
  'oidc.client_id': 'clientId',
  'oidc.client_secret': 'clientSecret',
  'oidc.client_secret_path': 'clientSecretPath',
  'oidc.scopes': 'scopes',
  'oidc.extra_params': 'extraParams',
  'oidc.allowed_domains': 'allowedDomains',
  'oidc.allowed_users': 'allowedUsers',
  'oidc.allowed_groups': 'allowedGroups',
  'oidc.email_verified_required': 'emailVerifiedRequired',
  'oidc.pkce': 'pkce',
  'oidc.expiry': 'expiry',
  'oidc.groups_claim': 'groupsClaim',
  'oidc.policy_groups': 'policyGroups',
  'oidc.console_roles': 'consoleRoles',
  store: 'store',
  'store.type': 'type',
  'store.postgres': 'postgres',
  'store.postgres.url': 'url',
  'store.postgres.pool_size': 'poolSize',
  'store.postgres.timeout': 'timeout',
  'store.postgres.tls': 'tls',
  'store.postgres.ca_file': 'caFile',
};

/** Keys whose value is a free-form mapping, taken whole rather than merged key by key. */
const mappingKeys = new Set(['oidc.extra_params', 'oidc.console_roles']);

/** Every settable key (the leaves, e.g. `dns.base_domain`); sections such as `dns` are not keys of their own. */
export function configKeys(): string[] {
  const keys = Object.keys(fileKeys);
  return keys.filter((k) => !keys.some((other) => other.startsWith(k + '.')));
}

/** The environment variable that overrides a key: TAILPLANE_ and the key upper-cased, every dot an underscore. */
export function envName(key: string): string {
  return 'TAILPLANE_' + key.replaceAll('.', '_').toUpperCase();
}

/** Environment overrides: TAILPLANE_SERVER_URL, TAILPLANE_DNS_BASE_DOMAIN, … */
function envOverrides(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of configKeys()) {
    const raw = env[envName(key)];
    if (raw === undefined) continue;
    const path = key.split('.');
    let target = out;
    for (const p of path.slice(0, -1)) target = (target[p] ??= {}) as Record<string, unknown>;
    target[path.at(-1)!] = parseEnvValue(envName(key), raw);
  }
  return out;
}

/** Booleans, whole numbers, and lists or mappings written as JSON (`["a","b"]`, `{"k":"v"}`); else the text. */
function parseEnvValue(name: string, raw: string): unknown {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (/^-?\d+$/.test(raw)) return Number(raw);
  if (!raw.startsWith('[') && !raw.startsWith('{')) return raw;
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(`${name}: a list or mapping must be JSON (${(err as Error).message})`);
  }
}

/** Merges a snake_case object into the config, rejecting unknown keys by their dotted path. */
function merge(target: Record<string, unknown>, source: Record<string, unknown>, prefix: string): void {
  for (const [key, value] of Object.entries(source)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const field = fileKeys[path];
    if (field === undefined) throw new ConfigError(`unknown config key "${path}"`);
    const current = target[field];
    if (mappingKeys.has(path)) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new ConfigError(`config key "${path}" must be a mapping, got ${JSON.stringify(value)}`);
      }
      target[field] = value;
    } else if (current !== null && typeof current === 'object' && !Array.isArray(current)) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new ConfigError(`config key "${path}" must be a mapping, got ${JSON.stringify(value)}`);
      }
      merge(current as Record<string, unknown>, value as Record<string, unknown>, path);
    } else {
      target[field] = value;
    }
  }
}

export function parseConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new ConfigError(`cannot read the config file ${path} (--config): ${why}`);
  }
  try {
    const parsed = ['.yaml', '.yml'].includes(extname(path)) ? YAML.parse(text) : JSON5.parse(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('top level must be a mapping');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message}`);
  }
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Command-line overrides, already in Config shape. */
  overrides?: { listenAddr?: string; dataDir?: string; serverUrl?: string };
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const config = defaultConfig() as unknown as Record<string, unknown>;
  if (opts.file) merge(config, parseConfigFile(opts.file), '');
  merge(config, envOverrides(opts.env ?? process.env), '');
  for (const [k, v] of Object.entries(opts.overrides ?? {})) if (v !== undefined) config[k] = v;
  const result = config as unknown as Config;
  validate(result);
  result.dataDir = resolve(result.dataDir);
  return result;
}

function fail(key: string, value: unknown, why: string): never {
  throw new ConfigError(`invalid config ${key}=${JSON.stringify(value)}: ${why}`);
}

function checkType(key: string, value: unknown, type: 'string' | 'number' | 'boolean'): void {
  if (typeof value !== type) fail(key, value, `expected a ${type}`);
}

export function parseHostPort(addr: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { host: m[1] ?? m[2] ?? '', port };
}

/** An http(s) URL, or a failure naming the key. */
function httpUrl(key: string, value: unknown, protocolHint: string): URL {
  checkType(key, value, 'string');
  let url: URL;
  try {
    url = new URL(value as string);
  } catch {
    fail(key, value, 'not a URL');
  }
  if (!['http:', 'https:'].includes(url.protocol)) fail(key, value, protocolHint);
  return url;
}

function validate(c: Config): void {
  const url = httpUrl('server_url', c.serverUrl, 'must be http:// or https://');
  if (url.pathname !== '/' && url.pathname !== '') fail('server_url', c.serverUrl, 'must not have a path (clients ignore it for /ts2021)');
  if (typeof c.listenAddr !== 'string' || !parseHostPort(c.listenAddr)) fail('listen_addr', c.listenAddr, 'expected host:port');
  checkType('data_dir', c.dataDir, 'string');
  checkPrefix('prefixes.v4', c.prefixes.v4, 4, '100.64.0.0/10');
  checkPrefix('prefixes.v6', c.prefixes.v6, 6, 'fd7a:115c:a1e0::/48');
  if (!['sequential', 'random'].includes(c.prefixes.allocation)) {
    fail('prefixes.allocation', c.prefixes.allocation, 'expected "sequential" or "random"');
  }
  checkType('dns.magic_dns', c.dns.magicDns, 'boolean');
  checkType('dns.base_domain', c.dns.baseDomain, 'string');
  if (!/^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$/i.test(c.dns.baseDomain)) {
    fail('dns.base_domain', c.dns.baseDomain, 'not a DNS name');
  }
  if (c.dns.baseDomain === url.hostname) fail('dns.base_domain', c.dns.baseDomain, 'must differ from the server_url host');
  if (!Array.isArray(c.dns.nameservers) || c.dns.nameservers.some((n) => !isIP(String(n)))) {
    fail('dns.nameservers', c.dns.nameservers, 'expected a list of IP addresses');
  }
  checkType('dns.override_local_dns', c.dns.overrideLocalDns, 'boolean');
  if (!Array.isArray(c.dns.searchDomains)) fail('dns.search_domains', c.dns.searchDomains, 'expected a list');
  checkType('derp.enabled', c.derp.enabled, 'boolean');
  if (!Number.isInteger(c.derp.regionId) || c.derp.regionId < 1 || c.derp.regionId > 65535) {
    fail('derp.region_id', c.derp.regionId, 'expected an integer 1..65535');
  }
  checkType('derp.region_code', c.derp.regionCode, 'string');
  if (c.derp.stunListenAddr !== '' && !parseHostPort(String(c.derp.stunListenAddr))) {
    fail('derp.stun_listen_addr', c.derp.stunListenAddr, 'expected host:port or ""');
  }
  checkType('derp.map_path', c.derp.mapPath, 'string');
  if (c.derp.url !== undefined && c.derp.url !== '' && !/^https?:\/\/[^/]+\/?$/.test(String(c.derp.url))) {
    fail('derp.url', c.derp.url, 'expected "" or an http(s) URL without a path, like http://10.0.0.2:8080');
  }
  if (c.certs.dnsListenAddr !== '' && !parseHostPort(String(c.certs.dnsListenAddr))) {
    fail('certs.dns_listen_addr', c.certs.dnsListenAddr, 'expected host:port or ""');
  }
  for (const [key, value] of [
    ['node.expiry_seconds', c.node.expirySeconds],
    ['node.ephemeral_inactivity_seconds', c.node.ephemeralInactivitySeconds],
  ] as const) {
    if (!Number.isInteger(value) || value < 0) fail(key, value, 'expected a whole number of seconds ≥ 0');
  }
  if (!Number.isInteger(c.ssh.checkTimeoutSeconds) || c.ssh.checkTimeoutSeconds < 1 || c.ssh.checkTimeoutSeconds > 1800) {
    // The destination node gives up on its own after 30 minutes.
    fail('ssh.check_timeout_seconds', c.ssh.checkTimeoutSeconds, 'expected a whole number of seconds from 1 to 1800');
  }
  for (const key of ['git', 'ref', 'path', 'file', 'interval', 'webhookUrl', 'webhookSecretFile', 'apiKeyFile'] as const) {
    checkType(`sync.${key.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`)}`, c.sync[key], 'string');
  }
  if (!Number.isInteger(c.audit.retentionDays) || c.audit.retentionDays < 0) fail('audit.retention_days', c.audit.retentionDays, 'expected a whole number of days ≥ 0 (0 keeps everything)');
  if (!['enforce', 'report'].includes(c.sync.mode)) fail('sync.mode', c.sync.mode, 'expected "enforce" or "report"');
  if (!['trace', 'debug', 'info', 'warn', 'error', 'silent'].includes(c.log.level)) {
    fail('log.level', c.log.level, 'expected trace|debug|info|warn|error|silent');
  }
  if (c.metrics.listenAddr !== '' && !parseHostPort(String(c.metrics.listenAddr))) {
    fail('metrics.listen_addr', c.metrics.listenAddr, 'expected host:port or "" (off)');
  }
  validateOidc(c.oidc);
  validateStore(c.store);
}

function validateStore(s: StoreConfig): void {
  if (!['sqlite', 'postgres'].includes(s.type)) fail('store.type', s.type, 'expected "sqlite" or "postgres"');
  const pg = s.postgres;
  checkType('store.postgres.url', pg.url, 'string');
  if (s.type === 'postgres') {
    // The URL may carry a password: it is never echoed back.
    let url: URL | undefined;
    try {
      url = new URL(pg.url);
    } catch {}
    if (!url || !['postgres:', 'postgresql:'].includes(url.protocol) || !url.hostname) {
      throw new ConfigError('invalid config store.postgres.url: expected postgres://user@host:port/database (required when store.type is postgres)');
    }
  }
  if (!Number.isInteger(pg.poolSize) || pg.poolSize < 1 || pg.poolSize > 100) fail('store.postgres.pool_size', pg.poolSize, 'expected an integer 1..100');
  if (typeof pg.timeout !== 'string' || !durationMs(pg.timeout)) fail('store.postgres.timeout', pg.timeout, 'expected a duration such as 5s');
  if (!['off', 'require', 'verify-full'].includes(pg.tls)) fail('store.postgres.tls', pg.tls, 'expected off|require|verify-full');
  checkType('store.postgres.ca_file', pg.caFile, 'string');
  if (pg.caFile !== '' && pg.tls !== 'verify-full') fail('store.postgres.ca_file', pg.caFile, 'only used with store.postgres.tls: verify-full');
}

/** Checked only when OIDC is on (an issuer is set), so the defaults never stand in the way. */
function validateOidc(o: OidcConfig): void {
  checkType('oidc.issuer', o.issuer, 'string');
  if (o.issuer === '') return;
  httpUrl('oidc.issuer', o.issuer, 'must be https:// (or http:// on loopback)');
  checkType('oidc.client_id', o.clientId, 'string');
  if (o.clientId === '') fail('oidc.client_id', o.clientId, 'required when oidc.issuer is set');
  checkType('oidc.client_secret', o.clientSecret, 'string');
  checkType('oidc.client_secret_path', o.clientSecretPath, 'string');
  if (o.clientSecret !== '' && o.clientSecretPath !== '') {
    fail('oidc.client_secret_path', o.clientSecretPath, 'set either oidc.client_secret or oidc.client_secret_path, not both');
  }
  // The secret file is read here, once: a missing or empty file stops the start like any other bad value.
  if (o.clientSecretPath !== '') {
    try {
      o.clientSecret = readFileSync(o.clientSecretPath, 'utf8').trim();
    } catch (err) {
      fail('oidc.client_secret_path', o.clientSecretPath, `cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (o.clientSecret === '') fail('oidc.client_secret_path', o.clientSecretPath, 'the file is empty');
  }
  for (const key of ['scopes', 'allowedDomains', 'allowedUsers', 'allowedGroups'] as const) {
    const value = o[key];
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) fail(oidcKey(key), value, 'expected a list of strings');
  }
  if (!o.scopes.includes('openid')) fail('oidc.scopes', o.scopes, 'must include "openid"');
  if (Object.values(o.extraParams).some((v) => typeof v !== 'string')) fail('oidc.extra_params', o.extraParams, 'expected string values');
  checkType('oidc.email_verified_required', o.emailVerifiedRequired, 'boolean');
  checkType('oidc.pkce', o.pkce, 'boolean');
  checkType('oidc.groups_claim', o.groupsClaim, 'string');
  checkType('oidc.policy_groups', o.policyGroups, 'boolean');
  for (const [group, role] of Object.entries(o.consoleRoles)) {
    if (!isRole(String(role))) fail(`oidc.console_roles.${group}`, role, `expected one of ${roles.join(', ')}`);
  }
  if (typeof o.expiry !== 'string' || (o.expiry !== 'from_token' && durationMs(o.expiry) === undefined)) {
    fail('oidc.expiry', o.expiry, 'expected "from_token" or a duration such as 180d, 12h, 30m');
  }
}

const oidcKey = (field: string) => `oidc.${field.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`)}`;

/** "90d", "12h", "30m", "45s" in milliseconds; undefined for anything else. */
export function durationMs(text: string): number | undefined {
  const m = /^(\d+)([smhd])$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

function checkPrefix(key: string, value: unknown, family: 4 | 6, within: string): void {
  if (typeof value !== 'string') fail(key, value, 'expected a CIDR prefix');
  const [ip, bits] = value.split('/');
  const max = family === 4 ? 32 : 128;
  if (isIP(ip ?? '') !== family || !/^\d+$/.test(bits ?? '') || Number(bits) > max) {
    fail(key, value, `expected an IPv${family} CIDR prefix`);
  }
  if (!cidrContains(within, value)) fail(key, value, `must lie inside ${within}`);
}
