/** Configuration: embedded defaults, files, env overrides, and clear errors for bad values. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, configKeys, envName, loadConfig, type Config } from '../../src/config/config.ts';
import { repoRoot, spawnServer, tempDir } from '../helpers/server.ts';

test('defaults, a YAML file and env overrides combine', () => {
  const dir = tempDir();
  const file = join(dir, 'tailplane.yaml');
  writeFileSync(file, 'server_url: https://ts.example.com\ndns:\n  base_domain: corp.ts.net\nprefixes:\n  allocation: random\n');
  const c = loadConfig({ file, env: { TAILPLANE_DNS_MAGIC_DNS: 'false', TAILPLANE_LISTEN_ADDR: '0.0.0.0:9000' } });
  assert.equal(c.serverUrl, 'https://ts.example.com');
  assert.equal(c.dns.baseDomain, 'corp.ts.net');
  assert.equal(c.dns.magicDns, false);
  assert.equal(c.listenAddr, '0.0.0.0:9000');
  assert.equal(c.prefixes.allocation, 'random');
  assert.equal(c.prefixes.v4, '100.64.0.0/10');
});

test('every config key can be set from the environment: TAILPLANE_ + the key, every dot an underscore', () => {
  // A value unlike the default for each key, and where the config keeps it.
  const samples: Record<string, [string, (c: Config) => unknown, unknown, Record<string, string>?]> = {
    server_url: ['https://ts.example.org', (c) => c.serverUrl, 'https://ts.example.org'],
    listen_addr: ['0.0.0.0:9443', (c) => c.listenAddr, '0.0.0.0:9443'],
    data_dir: ['/var/lib/tailplane', (c) => c.dataDir, '/var/lib/tailplane'],
    'prefixes.v4': ['100.100.0.0/16', (c) => c.prefixes.v4, '100.100.0.0/16'],
    'prefixes.v6': ['fd7a:115c:a1e0:ab::/64', (c) => c.prefixes.v6, 'fd7a:115c:a1e0:ab::/64'],
    'prefixes.allocation': ['random', (c) => c.prefixes.allocation, 'random'],
    'dns.magic_dns': ['false', (c) => c.dns.magicDns, false],
    'dns.base_domain': ['corp.example', (c) => c.dns.baseDomain, 'corp.example'],
    'dns.nameservers': ['["9.9.9.9"]', (c) => c.dns.nameservers, ['9.9.9.9']],
    'dns.search_domains': ['["corp.example"]', (c) => c.dns.searchDomains, ['corp.example']],
    'derp.enabled': ['false', (c) => c.derp.enabled, false],
    'derp.region_id': ['901', (c) => c.derp.regionId, 901],
    'derp.region_code': ['hospital', (c) => c.derp.regionCode, 'hospital'],
    'derp.stun_listen_addr': ['127.0.0.1:3479', (c) => c.derp.stunListenAddr, '127.0.0.1:3479'],
    'derp.map_path': ['/etc/tailplane/derp.json', (c) => c.derp.mapPath, '/etc/tailplane/derp.json'],
    'derp.url': ['http://10.0.0.2:8080', (c) => c.derp.url, 'http://10.0.0.2:8080'],
    'node.expiry_seconds': ['86400', (c) => c.node.expirySeconds, 86400],
    'node.ephemeral_inactivity_seconds': ['30', (c) => c.node.ephemeralInactivitySeconds, 30],
    'log.level': ['warn', (c) => c.log.level, 'warn'],
    'dns.override_local_dns': ['false', (c) => c.dns.overrideLocalDns, false],
    'certs.dns_listen_addr': ['0.0.0.0:53', (c) => c.certs.dnsListenAddr, '0.0.0.0:53'],
    'ssh.check_timeout_seconds': ['120', (c) => c.ssh.checkTimeoutSeconds, 120],
    'sync.git': ['https://git.example.com/infra/tailnet.git', (c) => c.sync.git, 'https://git.example.com/infra/tailnet.git'],
    'sync.ref': ['release', (c) => c.sync.ref, 'release'],
    'sync.path': ['tailnet/desired.hujson', (c) => c.sync.path, 'tailnet/desired.hujson'],
    'sync.file': ['/etc/tailplane/desired.hujson', (c) => c.sync.file, '/etc/tailplane/desired.hujson'],
    'sync.interval': ['5m', (c) => c.sync.interval, '5m'],
    'sync.mode': ['report', (c) => c.sync.mode, 'report'],
    'sync.webhook_url': ['https://chat.example.com/hook', (c) => c.sync.webhookUrl, 'https://chat.example.com/hook'],
    'sync.webhook_secret_file': ['/etc/tailplane/webhook-secret', (c) => c.sync.webhookSecretFile, '/etc/tailplane/webhook-secret'],
    // An issuer turns OIDC on, which needs a client id.
    'oidc.issuer': ['https://login.example.com/realms/clinic', (c) => c.oidc.issuer, 'https://login.example.com/realms/clinic', { TAILPLANE_OIDC_CLIENT_ID: 'tailplane' }],
    'oidc.client_id': ['tailplane', (c) => c.oidc.clientId, 'tailplane'],
    'oidc.client_secret': ['s3cret', (c) => c.oidc.clientSecret, 's3cret'],
    'oidc.client_secret_path': ['/etc/tailplane/oidc-secret', (c) => c.oidc.clientSecretPath, '/etc/tailplane/oidc-secret'],
    'oidc.scopes': ['["openid","email"]', (c) => c.oidc.scopes, ['openid', 'email']],
    'oidc.extra_params': ['{"domain_hint":"clinic.example"}', (c) => c.oidc.extraParams, { domain_hint: 'clinic.example' }],
    'oidc.allowed_domains': ['["clinic.example"]', (c) => c.oidc.allowedDomains, ['clinic.example']],
    'oidc.allowed_users': ['["ngozi@clinic.example"]', (c) => c.oidc.allowedUsers, ['ngozi@clinic.example']],
    'oidc.allowed_groups': ['["ops"]', (c) => c.oidc.allowedGroups, ['ops']],
    'oidc.email_verified_required': ['false', (c) => c.oidc.emailVerifiedRequired, false],
    'oidc.pkce': ['false', (c) => c.oidc.pkce, false],
    'oidc.expiry': ['180d', (c) => c.oidc.expiry, '180d'],
    'oidc.groups_claim': ['roles', (c) => c.oidc.groupsClaim, 'roles'],
    'oidc.policy_groups': ['true', (c) => c.oidc.policyGroups, true],
    'oidc.console_roles': ['{"ops":"admin"}', (c) => c.oidc.consoleRoles, { ops: 'admin' }],
    'metrics.listen_addr': ['127.0.0.1:9191', (c) => c.metrics.listenAddr, '127.0.0.1:9191'],
    'sync.api_key_file': ['/etc/tailplane/sync-key', (c) => c.sync.apiKeyFile, '/etc/tailplane/sync-key'],
    'audit.retention_days': ['30', (c) => c.audit.retentionDays, 30],
    'store.type': ['postgres', (c) => c.store.type, 'postgres', { TAILPLANE_STORE_POSTGRES_URL: 'postgres://tailplane@db.clinic.example/tailplane' }],
    'store.postgres.url': ['postgres://tailplane@db.clinic.example:5433/tailplane', (c) => c.store.postgres.url, 'postgres://tailplane@db.clinic.example:5433/tailplane'],
    'store.postgres.pool_size': ['4', (c) => c.store.postgres.poolSize, 4],
    'store.postgres.timeout': ['2s', (c) => c.store.postgres.timeout, '2s'],
    'store.postgres.tls': ['verify-full', (c) => c.store.postgres.tls, 'verify-full'],
    'store.postgres.ca_file': ['/etc/tailplane/pg-ca.pem', (c) => c.store.postgres.caFile, '/etc/tailplane/pg-ca.pem', { TAILPLANE_STORE_POSTGRES_TLS: 'verify-full' }],
  };
  assert.deepEqual(configKeys().sort(), Object.keys(samples).sort(), 'every key the config knows has a sample here');
  for (const [key, [raw, get, expected, companions]] of Object.entries(samples)) {
    const name = envName(key);
    assert.equal(name, 'TAILPLANE_' + key.split('.').join('_').toUpperCase());
    assert.deepEqual(get(loadConfig({ env: { ...companions, [name]: raw } })), expected, `${name}=${raw}`);
  }
  // Nested keys deeper than one section map the same way (the bug was a replace of the first dot only).
  assert.equal(envName('store.postgres.url'), 'TAILPLANE_STORE_POSTGRES_URL');
});

test('a missing --config file is one clear line, no stack trace', () => {
  const missing = join(tempDir(), 'nope.yaml');
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/tailplane.js'), 'serve', '--config', missing], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim(), `tailplane: cannot read the config file ${missing} (--config): no such file`);
});

test('HuJSON config files with comments work too', () => {
  const file = join(tempDir(), 'tailplane.hujson');
  writeFileSync(file, '{\n  // where clients connect\n  "server_url": "http://10.0.0.1:8080",\n}\n');
  assert.equal(loadConfig({ file, env: {} }).serverUrl, 'http://10.0.0.1:8080');
});

test('bad values name the key and the value', () => {
  const cases: [string, RegExp][] = [
    ['prefixes:\n  v4: 10.0.0.0/8\n', /prefixes\.v4="10\.0\.0\.0\/8".*inside 100\.64\.0\.0\/10/],
    ['listen_addr: nowhere\n', /listen_addr="nowhere"/],
    ['node:\n  expiry_seconds: -5\n', /node\.expiry_seconds=-5/],
    ['dns:\n  nameservers: [banana]\n', /dns\.nameservers/],
    ['dns:\n  override_local_dns: maybe\n', /dns\.override_local_dns="maybe": expected a boolean/],
    ['certs:\n  dns_listen_addr: port53\n', /certs\.dns_listen_addr="port53": expected host:port/],
    ['colour: blue\n', /unknown config key "colour"/],
    ['metrics:\n  listen_addr: 9090\n', /metrics\.listen_addr=9090.*host:port or "" \(off\)/],
    ['store:\n  type: oracle\n', /store\.type="oracle": expected "sqlite" or "postgres"/],
    ['store:\n  type: postgres\n', /store\.postgres\.url: expected postgres:\/\/user@host:port\/database \(required when store\.type is postgres\)/],
    ['store:\n  postgres:\n    pool_size: 0\n', /store\.postgres\.pool_size=0: expected an integer 1\.\.100/],
    ['store:\n  postgres:\n    tls: maybe\n', /store\.postgres\.tls="maybe"/],
  ];
  for (const [yaml, message] of cases) {
    const file = join(tempDir(), 'bad.yaml');
    writeFileSync(file, yaml);
    assert.throws(() => loadConfig({ file, env: {} }), (err: Error) => err instanceof ConfigError && message.test(err.message));
  }
});

test('serve with an invalid config exits non-zero with the error', () => {
  const file = join(tempDir(), 'bad.yaml');
  writeFileSync(file, 'prefixes:\n  allocation: sideways\n');
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/tailplane.js'), 'serve', '--config', file], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /prefixes\.allocation="sideways"/);
});

test('the server starts with no config file and writes a 0600 bootstrap key', async () => {
  const server = await spawnServer();
  try {
    const { statSync } = await import('node:fs');
    assert.equal(statSync(join(server.dataDir, 'admin-api-key')).mode & 0o777, 0o600);
    assert.match(server.log(), /created the first admin API key in .*admin-api-key/);
    assert.ok(!server.log().includes(server.apiKey), 'the key itself is never logged');
  } finally {
    await server.stop();
  }
});
