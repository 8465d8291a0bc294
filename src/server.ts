/**
 * `tailplane serve`: wires configuration, the SQLite store, the tailnet state, the admin API, the control
 * protocol and the embedded DERP relay onto one HTTP listener.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, writeFileSync, mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createAdminApp } from './admin/app.ts';
import { createPolicyChecker } from './admin/policy-checker.ts';
import { parseHostPort, type Config } from './config/config.ts';
import { databaseFileName, openSqliteStore } from './store/sqlite.ts';
import type { Store } from './store/store.ts';
import { createRegistrations } from './state/registrations.ts';
import { createTailnet, type Tailnet } from './state/tailnet.ts';
import { createPolicyView } from './state/policy-view.ts';
import { createAutoApprover } from './state/auto-approve.ts';
import { createEphemeralReaper } from './state/ephemeral.ts';
import { createControl } from './control/service.ts';
import { createNoiseUpgrade } from './control/upgrade.ts';
import { loadOrCreateNoiseKey } from './control/noise/keys.ts';
import { createMetrics, listenMetrics, type MetricsListener } from './metrics/metrics.ts';
import { createDerpServer, createStunServer, embeddedDerpMap, loadDerpMap, mergeDerpMaps, type DerpMap } from './derp/index.ts';

export interface Server {
  readonly tailnet: Tailnet;
  /** The URL the server listens on (useful when the config asked for port 0). */
  readonly url: string;
  /** Map streams open now and opened since start. */
  stats(): { mapStreams: number; mapStreamsOpened: number };
  close(): Promise<void>;
}

export async function startServer(config: Config): Promise<Server> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // Sources are read at scrape time, by when every part below exists.
  const metrics = config.metrics.listenAddr
    ? createMetrics({
        nodes: () => tailnet.nodes.list(),
        isOnline: (id) => tailnet.nodes.isOnline(id),
        mapStreams: () => control.mapper.count(),
        derp: () => derp?.stats(),
      })
    : undefined;
  const sqlite = openSqliteStore(join(config.dataDir, databaseFileName));
  const store = metrics?.observeStore(sqlite) ?? sqlite;
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
  const policyView = createPolicyView(tailnet, { serverUrl: config.serverUrl, onCompile: metrics?.policyCompiled });
  let httpServer!: http.Server;
  let serverUrl = config.serverUrl;
  let derpMap: DerpMap | undefined;
  const admin = createAdminApp({
    tailnet,
    registrations,
    policy: createPolicyChecker(tailnet, policyView),
    primaryRoutes: () => control.primary.all(),
    logLevel: config.log.level,
    serverUrl: () => serverUrl,
    onResponse: metrics?.adminResponse,
    backup: () => backupToTemp(store, config.dataDir),
    serverFactory: (handler) => {
      httpServer = http.createServer((req, res) => {
        if (noise.handleRequest(req, res) || (derp?.handleRequest(req, res) ?? false)) return;
        handler(req, res);
      });
      httpServer.on('upgrade', (req, socket, head) => {
        if (noise.handleUpgrade(req, socket, head) || (derp?.handleUpgrade(req, socket, head) ?? false)) return;
        socket.destroy();
      });
      return httpServer;
    },
  });
  const log = admin.log;
  const control = createControl({
    tailnet,
    registrations,
    policy: policyView,
    derpMap: () => derpMap!,
    get serverUrl() {
      return serverUrl;
    },
    log,
    observer: metrics?.control,
  });
  const autoApprover = createAutoApprover(tailnet, policyView, (err) => log.warn({ err: (err as Error).message }, 'route auto-approval failed'));
  const reaper = createEphemeralReaper(tailnet, {
    inactivityMs: config.node.ephemeralInactivitySeconds * 1000,
    onError: (err) => log.warn({ err: (err as Error).message }, 'ephemeral node clean-up failed'),
  });
  const noise = createNoiseUpgrade({ keyPair: loadOrCreateNoiseKey(config.dataDir), onRequest: control.onRequest, logger: log });
  // The relay admits only current nodes of the tailnet.
  const derp = config.derp.enabled
    ? createDerpServer({ isAllowed: (key) => tailnet.nodes.byNodeKey(key) !== undefined, logger: log })
    : undefined;
  const unsubscribe = tailnet.subscribe((c) => {
    if (c.kind === 'node-removed' || (c.kind === 'node-updated' && c.fields.includes('keys'))) void derp?.recheckAccess();
  });
  await admin.ready();
  writeBootstrapKey(config, tailnet, (msg) => log.info(msg));

  const { host, port } = parseHostPort(config.listenAddr)!;
  await admin.listen({ host, port });
  const addr = httpServer.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  // Asked for a random port (tests): clients must be told the real one.
  if (port === 0) serverUrl = url;
  const stun = await startStun(config);
  derpMap = await buildDerpMap(config, serverUrl, stun?.port);
  let metricsListener: MetricsListener | undefined;
  const close = async () => {
    unsubscribe();
    autoApprover.stop();
    reaper.stop();
    control.stop();
    noise.close();
    derp?.close();
    await stun?.close();
    await metricsListener?.close();
    await admin.close();
    store.close();
  };
  if (metrics) {
    try {
      metricsListener = await listenMetrics(metrics.registry, config.metrics.listenAddr);
    } catch (err) {
      // A server without the metrics it was asked for would page nobody when it breaks: stop instead.
      await close();
      throw err;
    }
    log.info(`metrics on ${metricsListener.url}`);
  }
  log.info(`tailplane listening on ${url} (data in ${config.dataDir})`);
  return {
    tailnet,
    url,
    stats: () => ({ mapStreams: control.mapper.count(), mapStreamsOpened: control.mapper.opened() }),
    close,
  };
}

/** Writes an online copy of the database to a new 0600 file in the data dir and returns its path. */
async function backupToTemp(store: Store, dataDir: string): Promise<string> {
  const path = join(dataDir, `backup-${randomUUID()}.sqlite.partial`);
  closeSync(openSync(path, 'wx', 0o600));
  try {
    await store.backup(path);
    return path;
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  }
}

async function startStun(config: Config) {
  if (!config.derp.enabled || config.derp.stunListenAddr === '') return undefined;
  const { host, port } = parseHostPort(config.derp.stunListenAddr)!;
  return createStunServer({ host, port });
}

/** The embedded region (when enabled) plus any DERP map file the config names. */
async function buildDerpMap(config: Config, serverUrl: string, stunPort: number | undefined): Promise<DerpMap> {
  const maps: DerpMap[] = [];
  if (config.derp.enabled) {
    maps.push(embeddedDerpMap({ serverUrl, regionId: config.derp.regionId, regionCode: config.derp.regionCode, stunPort }));
  }
  if (config.derp.mapPath) maps.push(await loadDerpMap(config.derp.mapPath));
  return mergeDerpMaps(...maps);
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
