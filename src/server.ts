/**
 * `tailplane serve`: wires configuration, the SQLite store, the tailnet state, the admin API, the control
 * protocol and the embedded DERP relay onto one HTTP listener.
 */
import { existsSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createAdminApp } from './admin/app.ts';
import type { PolicyChecker } from './admin/routes/settings.ts';
import { parseHostPort, type Config } from './config/config.ts';
import { openSqliteStore } from './store/sqlite.ts';
import { createRegistrations } from './state/registrations.ts';
import { createTailnet, type Tailnet } from './state/tailnet.ts';
import JSON5 from 'json5';

export interface Server {
  readonly tailnet: Tailnet;
  /** The URL the server listens on (useful when the config asked for port 0). */
  readonly url: string;
  close(): Promise<void>;
}

/** Until the policy engine is wired in, a policy must at least parse as HuJSON. */
const hujsonOnly: PolicyChecker = {
  check(text) {
    try {
      JSON5.parse(text);
      return [];
    } catch (err) {
      return [(err as Error).message];
    }
  },
};

export async function startServer(config: Config): Promise<Server> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const store = openSqliteStore(join(config.dataDir, 'tailplane.sqlite'));
  const tailnet = createTailnet(store, {
    prefixes: config.prefixes,
    defaultDns: {
      magicDns: config.dns.magicDns,
      baseDomain: config.dns.baseDomain,
      nameservers: config.dns.nameservers,
      splitDns: {},
      searchDomains: config.dns.searchDomains,
      extraRecords: [],
    },
    expirySeconds: config.node.expirySeconds,
  });
  const registrations = createRegistrations({ ttlMs: 15 * 60_000 });
  let httpServer!: http.Server;
  const admin = createAdminApp({
    tailnet,
    registrations,
    policy: hujsonOnly,
    logLevel: config.log.level,
    serverFactory: (handler) => {
      httpServer = http.createServer(handler);
      return httpServer;
    },
  });
  await admin.ready();
  writeBootstrapKey(config, tailnet, (msg) => admin.log.info(msg));

  const { host, port } = parseHostPort(config.listenAddr)!;
  await admin.listen({ host, port });
  const addr = httpServer.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  admin.log.info(`tailplane listening on ${url} (data in ${config.dataDir})`);
  return {
    tailnet,
    url,
    async close() {
      await admin.close();
      store.close();
    },
  };
}

/**
 * On a fresh data dir, creates the first admin API key and writes it to a 0600 file; logs the file's path,
 * never the key.
 */
function writeBootstrapKey(config: Config, tailnet: Tailnet, log: (msg: string) => void): void {
  const path = join(config.dataDir, 'admin-api-key');
  if (tailnet.apiKeys.list().length > 0 || existsSync(path)) return;
  const { key } = tailnet.apiKeys.create({});
  writeFileSync(path, key + '\n', { mode: 0o600 });
  log(`created the first admin API key in ${path}`);
}
