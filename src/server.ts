/**
 * `tailplane serve`: wires configuration, the store (SQLite or PostgreSQL), the tailnet state, the admin API, the control
 * protocol and the embedded DERP relay onto one HTTP listener, plus the ACME challenge DNS responder when
 * HTTPS certificates are on.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createAdminApp } from './admin/app.ts';
import { guardRequests, guardUpgrades } from './guard/http.ts';
import { capConnectionsPerSource, defaultLimits, type Limits } from './guard/limits.ts';
import { createPolicyChecker } from './admin/policy-checker.ts';
import { ConfigError, envName, parseHostPort, type Config } from './config/config.ts';
import { databaseFileName } from './store/sqlite.ts';
import { openStore } from './store/open.ts';
import type { SharedLog, Store } from './store/store.ts';
import { openDataDir } from './guard/data-dir.ts';
import { createRegistrations } from './state/registrations.ts';
import { StateError } from './state/errors.ts';
import { createTailnet, type Tailnet } from './state/tailnet.ts';
import { createPolicyView } from './state/policy-view.ts';
import { createAutoApprover } from './state/auto-approve.ts';
import { createEphemeralReaper } from './state/ephemeral.ts';
import { createControl } from './control/service.ts';
import { createNoiseUpgrade } from './control/upgrade.ts';
import { resumePresence } from './control/resume.ts';
import { createHandshakePool } from './control/noise/handshake-pool.ts';
import { formatKey, loadOrCreateNoiseKey, parseKey, privateKeyPrefix, type KeyPair } from './control/noise/keys.ts';
import { publicKeyOf } from './control/noise/primitives.ts';
import { ensureSchema, sharedNoiseKeyText, startReplica, type Replica } from './replica/index.ts';
import { createChallengeStore } from './dns/challenges.ts';
import { createAcmeResponder } from './dns/responder.ts';
import { startDnsServer, type DnsServer } from './dns/server.ts';
import { createRelyingParty } from './oidc/relying-party.ts';
import { callbackPath, sshCheckPath } from './oidc/routes.ts';
import { createDerpServer, createStunServer, embeddedDerpMap, loadDerpMap, mergeDerpMaps, type DerpMap, type DerpLogger, type StunServer } from './derp/index.ts';
import type { Registry } from 'prom-client';
import { createMetrics, listenMetrics, type MetricsListener } from './metrics/metrics.ts';

export interface Server {
  readonly tailnet: Tailnet;
  /** The URL the server listens on (useful when the config asked for port 0). */
  readonly url: string;
  /** The port of the ACME challenge DNS responder, when HTTPS certificates are on. */
  readonly acmeDnsPort: number | undefined;
  /** Map streams open now and opened since start. */
  stats(): { mapStreams: number; mapStreamsOpened: number };
  /** The registry /metrics serves, for parts started beside the server (sync); undefined when metrics are off. */
  readonly metricsRegistry: Registry | undefined;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Overrides of the built-in limits (tests use short timeouts). */
  readonly limits?: Partial<Limits>;
  /** Worker threads for Noise handshakes; by default one per core beside the event loop's, at most 4. */
  readonly handshakeWorkers?: number;
  /** How long nodes connected at the last clean stop stay online without reconnecting (control/resume.ts). */
  readonly resumeGraceMs?: number;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<Server> {
  const limits: Limits = { ...defaultLimits, ...options.limits };
  const dataDir = openDataDir(config.dataDir);
  // Sources are read at scrape time, by when every part below exists.
  const metrics = config.metrics.listenAddr
    ? createMetrics({
        nodes: () => tailnet.nodes.list(),
        isOnline: (id) => tailnet.nodes.isOnline(id),
        mapStreams: () => control.mapper.count(),
        derp: () => derp?.stats(),
      })
    : undefined;
  let store: Store;
  let tailnet: Tailnet;
  /** With PostgreSQL: the change log other replicas write to, and this replica's part in the group. */
  let shared: SharedLog | undefined;
  let changesFrom = 0;
  let replica: Replica | undefined;
  try {
    const opened = openStore(config.store, () => dataDir.privateFile(databaseFileName));
    store = metrics?.observeStore(opened) ?? opened;
    shared = opened.shared;
    // Read before the snapshot loads: changes committed in between are replayed, which is harmless.
    changesFrom = shared?.lastSeq() ?? 0;
    tailnet = createTailnet(store, {
      prefixes: config.prefixes,
      defaultDns: {
        magicDns: config.dns.magicDns,
        baseDomain: config.dns.baseDomain,
        nameservers: config.dns.nameservers,
        overrideLocalDns: config.dns.overrideLocalDns,
        splitDns: {},
        searchDomains: config.dns.searchDomains,
        extraRecords: [],
      },
      expirySeconds: config.node.expirySeconds,
      sshCheckTimeoutMs: config.ssh.checkTimeoutSeconds * 1000,
      idpGroupsInPolicy: config.oidc.issuer !== '' && config.oidc.policyGroups,
    });
  } catch (err) {
    dataDir.release();
    throw err;
  }
  const registrations = createRegistrations({ ttlMs: 15 * 60_000, max: limits.pendingLogins });
  const policyView = createPolicyView(tailnet, { serverUrl: config.serverUrl, onCompile: metrics?.policyCompiled });
  let httpServer!: http.Server;
  let serverUrl = config.serverUrl;
  let derpMap: DerpMap | undefined;
  let ready = false;
  // The listener is made while fastify (and so its logger) is being built: log through it once it exists.
  const guardLog = { warn: (o: object, m?: string) => log.warn(o, m), error: (o: object, m?: string) => log.error(o, m) };
  // Discovery runs in the background with back-off: an unreachable IdP shows on /health instead of stopping serve.
  const oidcLog = { info: (msg: string) => admin.log.info(msg), warn: (obj: object, msg?: string) => admin.log.warn(obj, msg) };
  const rp = config.oidc.issuer
    ? createRelyingParty({ config: config.oidc, redirectUri: () => serverUrl + callbackPath, log: oidcLog })
    : undefined;
  const admin = createAdminApp({
    oidc: rp && { config: config.oidc, rp },
    tailnet,
    registrations,
    policy: createPolicyChecker(tailnet),
    livePolicy: () => policyView.current(),
    primaryRoutes: () => control.primary.all(),
    logLevel: config.log.level,
    serverUrl: () => serverUrl,
    ready: () => ready,
    replica: shared && (() => replicaHealth(replica)),
    catchUp: shared && (() => replica?.catchUp()),
    authFailuresPerSourcePerMinute: limits.authFailuresPerSourcePerMinute,
    onResponse: metrics?.adminResponse,
    // An online copy is SQLite's; a PostgreSQL tailnet is backed up with PostgreSQL's own tools.
    backup: config.store.type === 'sqlite' ? () => backupToTemp(store, config.dataDir) : () => Promise.reject(new StateError('invalid', postgresBackupHint)),
    serverFactory: (handler) => {
      httpServer = http.createServer(
        {
          headersTimeout: limits.headersMs,
          requestTimeout: limits.requestMs,
          // How often the two deadlines above are checked.
          connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(limits.headersMs / 4))),
        },
        guardRequests(guardLog, (req, res) => {
          if (noise.handleRequest(req, res) || (derp?.handleRequest(req, res) ?? false)) return;
          handler(req, res);
        }),
      );
      httpServer.on(
        'upgrade',
        guardUpgrades(guardLog, (req, socket, head) => noise.handleUpgrade(req, socket, head) || (derp?.handleUpgrade(req, socket, head) ?? false)),
      );
      // Idle HTTP connections; upgraded (Noise, DERP) sockets set their own.
      httpServer.setTimeout(limits.idleMs);
      capConnectionsPerSource(httpServer, limits.connectionsPerSource, guardLog);
      return httpServer;
    },
  });
  const log = admin.log;
  const challenges = config.certs.dnsListenAddr ? createChallengeStore() : undefined;
  const control = createControl({
    tailnet,
    registrations,
    policy: policyView,
    derpMap: () => derpMap!,
    get serverUrl() {
      return serverUrl;
    },
    publishTxt: challenges && ((name, value) => challenges.set(name, value)),
    sshCheckLoginUrl: rp && ((id) => `${serverUrl}${sshCheckPath.replace(':id', id)}`),
    log,
    pendingLoginsPerSourcePerMinute: limits.pendingLoginsPerSourcePerMinute,
    mapBacklogBytes: limits.mapBacklogBytes,
    observer: metrics?.control,
  });
  const autoApprover = createAutoApprover(tailnet, policyView, (err) => log.warn({ err: (err as Error).message }, 'route auto-approval failed'));
  // Background work that must run once per tailnet runs on the leader only (every replica when there is one server).
  const leads = () => !shared || (replica?.isLeader() ?? false);
  const reaper = createEphemeralReaper(tailnet, {
    inactivityMs: config.node.ephemeralInactivitySeconds * 1000,
    active: leads,
    onError: (err) => log.warn({ err: (err as Error).message }, 'ephemeral node clean-up failed'),
  });
  // Before any client connects: the nodes connected at the last clean stop are still online.
  const presence = resumePresence(config.dataDir, tailnet.nodes, (msg) => log.warn(msg), options.resumeGraceMs);
  const noiseKey = shared ? sharedNoiseKey(shared, config.dataDir) : loadOrCreateNoiseKey(config.dataDir);
  const noise = createNoiseUpgrade({
    keyPair: noiseKey,
    onRequest: control.onRequest,
    logger: log,
    timeouts: { idleMs: limits.idleMs, recordMs: limits.recordMs, requestMs: limits.requestMs },
    handshakes: createHandshakePool(noiseKey, {
      workers: options.handshakeWorkers ?? Math.min(4, availableParallelism() - 1),
      startAtPerSecond: handshakeBurst,
      onWorkerError: (err) => log.warn({ err: err.message }, 'noise: a handshake worker failed; its share runs on the event loop'),
    }),
  });
  // The relay admits only current nodes of the tailnet.
  const derp = config.derp.enabled
    ? createDerpServer({ isAllowed: (key) => tailnet.nodes.byNodeKey(key) !== undefined, logger: log })
    : undefined;
  const unsubscribe = tailnet.subscribe((c) => {
    if (c.kind === 'node-removed' || (c.kind === 'node-updated' && c.fields.includes('keys'))) void derp?.recheckAccess();
  });
  const pruneAudit = () => {
    if (config.audit.retentionDays === 0 || !leads()) return;
    try {
      tailnet.audit.prune(new Date(Date.now() - config.audit.retentionDays * 86_400_000));
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'audit log pruning failed');
    }
  };
  pruneAudit();
  // Hourly is plenty for a retention counted in days.
  const auditPruner = setInterval(pruneAudit, 3_600_000).unref();
  let dns: DnsServer | undefined;
  let stun: StunServer | undefined;
  let metricsListener: MetricsListener | undefined;
  const close = async () => {
    // Timers and streams first, so nothing writes to the store once it is closed.
    await replica?.stop();
    unsubscribe();
    clearInterval(auditPruner);
    autoApprover.stop();
    reaper.stop();
    control.stop();
    tailnet.sshChecks.stop();
    rp?.stop();
    await noise.close();
    try {
      presence.save();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not write the nodes to resume; they start offline next time');
    }
    derp?.close();
    await stun?.close();
    await dns?.close();
    await metricsListener?.close();
    await admin.close();
    store.close();
    dataDir.release();
  };
  // Every listener binds before the server says it is ready; a part that cannot start stops the whole server,
  // since a half-started one answers /health while no client ever gets a network map.
  let url: string;
  try {
    await admin.ready();
    writeBootstrapKey(config, tailnet, (msg) => log.info(msg));
    if (challenges) {
      dns = await bindOrExplain('certs.dns_listen_addr', `UDP and TCP ${config.certs.dnsListenAddr} for the ACME DNS responder`, () =>
        startAcmeDns(config, tailnet, challenges, log),
      );
    }
    if (config.derp.enabled && config.derp.stunListenAddr !== '') {
      stun = await bindOrExplain('derp.stun_listen_addr', `UDP ${config.derp.stunListenAddr} for STUN`, () => startStun(config.derp.stunListenAddr, log));
    }
    const { host, port } = parseHostPort(config.listenAddr)!;
    await bindOrExplain('listen_addr', `TCP ${config.listenAddr}`, () => admin.listen({ host, port }));
    const addr = httpServer.address() as AddressInfo;
    url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
    // Asked for a random port (tests): clients must be told the real one.
    if (port === 0) serverUrl = url;
    derpMap = await buildDerpMap(config, serverUrl, stun?.port);
    if (shared) {
      replica = await joinReplicas(config, shared, changesFrom, tailnet, serverUrl, stun?.port, log, (map) => {
        derpMap = map;
        control.mapper.derpMapChanged();
      });
    }
    // A server without the metrics it was asked for would page nobody when it breaks: stop instead.
    if (metrics) metricsListener = await listenMetrics(metrics.registry, config.metrics.listenAddr);
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
  // SQLite's -wal and -shm, the Noise key and the bootstrap key exist by now.
  dataDir.tighten();
  for (const warning of dataDir.warnings) log.warn(warning);
  ready = true;
  if (metricsListener) log.info(`metrics on ${metricsListener.url}`);
  log.info(`tailplane listening on ${url} (data in ${config.dataDir})`);
  return {
    tailnet,
    url,
    acmeDnsPort: dns?.port,
    stats: () => ({ mapStreams: control.mapper.count(), mapStreamsOpened: control.mapper.opened() }),
    metricsRegistry: metrics?.registry,
    close,
  };
}

/**
 * Handshakes within a second that start the handshake workers: a 1,000-node tailnet reconnecting after a restart
 * makes them; clients joining or coming back a few at a time, as in a 100-node tailnet, never do.
 */
const handshakeBurst = 200;

const postgresBackupHint =
  'tailplane backup copies the SQLite store, and this server stores its tailnet in PostgreSQL (store.type: postgres): back it up with pg_dump or your PostgreSQL backups';

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

/** The authoritative responder for the base domain's ACME challenge records (UDP and TCP, one port). */
async function startAcmeDns(config: Config, tailnet: Tailnet, store: ReturnType<typeof createChallengeStore>, log: { info(msg: string): void; warn(obj: object, msg?: string): void }) {
  const { host, port } = parseHostPort(config.certs.dnsListenAddr)!;
  const answer = createAcmeResponder({ zone: () => tailnet.dns().baseDomain, store, nsName: new URL(config.serverUrl).hostname });
  const server = await startDnsServer({ host, port, answer, log });
  log.info(`acme dns responder listening on ${host.includes(':') ? `[${host}]` : host}:${server.port} (udp, tcp)`);
  return server;
}

const bindFailures: Record<string, string> = {
  EADDRINUSE: 'the address is already in use (another tailplane on this machine?)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the address does not belong to this machine',
};

/** Runs a bind; a bind error becomes one line naming the config setting to change, with no stack trace. */
async function bindOrExplain<T>(setting: string, what: string, bind: () => Promise<T>): Promise<T> {
  try {
    return await bind();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const why = bindFailures[code] ?? (err as Error).message;
    const env = envName(setting);
    const off = setting === 'derp.stun_listen_addr' ? ', or "" to turn STUN off' : '';
    throw new ConfigError(`cannot listen on ${what}: ${why}. Set ${setting} (or ${env}) to a free host:port${off}.`);
  }
}

function startStun(listenAddr: string, logger: DerpLogger): Promise<StunServer> {
  const { host, port } = parseHostPort(listenAddr)!;
  return createStunServer({ host, port, logger });
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

/** The Noise key all replicas present: the one stored in PostgreSQL, put there by the first replica from its data dir. */
function sharedNoiseKey(shared: SharedLog, dataDir: string): KeyPair {
  ensureSchema(shared);
  const own = loadOrCreateNoiseKey(dataDir);
  const text = sharedNoiseKeyText(shared, formatKey(privateKeyPrefix, own.privateKey));
  const privateKey = parseKey(privateKeyPrefix, text);
  if (!privateKey) throw new Error('the Noise key stored in PostgreSQL is all zeros');
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

/**
 * Joins the replicas on the shared PostgreSQL: its relay region (at derp.url, the replica's own address) goes
 * into every replica's DERP map, and `onDerpMap` gets the map of all live replicas' regions whenever it changes.
 */
async function joinReplicas(
  config: Config, shared: SharedLog, from: number, tailnet: Tailnet, serverUrl: string, stunPort: number | undefined,
  log: { warn(obj: object, msg?: string): void; info(msg: string): void }, onDerpMap: (map: DerpMap) => void,
): Promise<Replica> {
  const fileMap = config.derp.mapPath ? await loadDerpMap(config.derp.mapPath) : undefined;
  const pg = config.store.postgres;
  return startReplica({
    url: pg.url,
    connection: pg.tls === 'off' ? {} : { ssl: { rejectUnauthorized: pg.tls === 'verify-full', ...(pg.caFile ? { ca: readFileSync(pg.caFile, 'utf8') } : {}) } },
    shared,
    from,
    tailnet,
    derp: config.derp.enabled ? { regionId: config.derp.regionId, regionCode: config.derp.regionCode, url: config.derp.url || serverUrl, stunPort: stunPort ?? null } : null,
    // Also called once while starting, before any stream is open.
    onDerpRegions: (regions) => {
      const embedded = regions.map((r) => embeddedDerpMap({ serverUrl: r.url, regionId: r.regionId, regionCode: r.regionCode, stunPort: r.stunPort ?? undefined }));
      onDerpMap(mergeDerpMaps(...embedded, ...(fileMap ? [fileMap] : [])));
    },
    log,
  });
}

/** The replica part of /health: degraded while the change log cannot be read or notifications are not heard. */
function replicaHealth(replica: Replica | undefined): { ok: boolean; [k: string]: unknown } {
  if (!replica) return { ok: false, state: 'starting' };
  const status = replica.status();
  return { ok: status.notifications.listening && status.notifications.storeOk, ...status };
}
