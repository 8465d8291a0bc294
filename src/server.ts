/**
 * `tailplane serve`: wires configuration, the SQLite store, the tailnet state, the admin API, the control
 * protocol and the embedded DERP relay onto one HTTP listener, plus the ACME challenge DNS responder when
 * HTTPS certificates are on.
 */
import { existsSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createAdminApp } from './admin/app.ts';
import { createPolicyChecker } from './admin/policy-checker.ts';
import { parseHostPort, type Config } from './config/config.ts';
import { openSqliteStore } from './store/sqlite.ts';
import { createRegistrations } from './state/registrations.ts';
import { createTailnet, type Tailnet } from './state/tailnet.ts';
import { createPolicyView } from './state/policy-view.ts';
import { createAutoApprover } from './state/auto-approve.ts';
import { createEphemeralReaper } from './state/ephemeral.ts';
import { createControl } from './control/service.ts';
import { createNoiseUpgrade } from './control/upgrade.ts';
import { loadOrCreateNoiseKey } from './control/noise/keys.ts';
import { createChallengeStore } from './dns/challenges.ts';
import { createAcmeResponder } from './dns/responder.ts';
import { startDnsServer, type DnsServer } from './dns/server.ts';
import { createDerpServer, createStunServer, embeddedDerpMap, loadDerpMap, mergeDerpMaps, type DerpMap } from './derp/index.ts';

export interface Server {
  readonly tailnet: Tailnet;
  /** The URL the server listens on (useful when the config asked for port 0). */
  readonly url: string;
  /** The port of the ACME challenge DNS responder, when HTTPS certificates are on. */
  readonly acmeDnsPort: number | undefined;
  /** Map streams open now and opened since start. */
  stats(): { mapStreams: number; mapStreamsOpened: number };
  close(): Promise<void>;
}

export async function startServer(config: Config): Promise<Server> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const store = openSqliteStore(join(config.dataDir, 'tailplane.sqlite'));
  const tailnet = createTailnet(store, {
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
  });
  const registrations = createRegistrations({ ttlMs: 15 * 60_000 });
  const policyView = createPolicyView(tailnet, { serverUrl: config.serverUrl });
  let httpServer!: http.Server;
  let serverUrl = config.serverUrl;
  let derpMap: DerpMap | undefined;
  const admin = createAdminApp({
    tailnet,
    registrations,
    policy: createPolicyChecker(tailnet),
    primaryRoutes: () => control.primary.all(),
    logLevel: config.log.level,
    serverUrl: () => serverUrl,
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
    log,
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
  const pruneAudit = () => {
    if (config.audit.retentionDays === 0) return;
    try {
      tailnet.audit.prune(new Date(Date.now() - config.audit.retentionDays * 86_400_000));
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'audit log pruning failed');
    }
  };
  pruneAudit();
  // Hourly is plenty for a retention counted in days.
  const auditPruner = setInterval(pruneAudit, 3_600_000).unref();
  await admin.ready();
  writeBootstrapKey(config, tailnet, (msg) => log.info(msg));

  let dns: DnsServer | undefined;
  let stun: Awaited<ReturnType<typeof startStun>>;
  const close = async () => {
    // Timers and streams first, so nothing writes to the store once it is closed.
    unsubscribe();
    clearInterval(auditPruner);
    autoApprover.stop();
    reaper.stop();
    control.stop();
    tailnet.sshChecks.stop();
    await noise.close();
    derp?.close();
    await stun?.close();
    await dns?.close();
    await admin.close();
    store.close();
  };
  // Bound before the HTTP listener: a taken DNS port fails the start before anything serves.
  if (challenges) {
    try {
      dns = await startAcmeDns(config, tailnet, challenges, log);
    } catch (err) {
      await close();
      throw new Error(`certs.dns_listen_addr ${config.certs.dnsListenAddr}: ${(err as Error).message}`);
    }
  }
  const { host, port } = parseHostPort(config.listenAddr)!;
  await admin.listen({ host, port });
  const addr = httpServer.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  // Asked for a random port (tests): clients must be told the real one.
  if (port === 0) serverUrl = url;
  stun = await startStun(config);
  derpMap = await buildDerpMap(config, serverUrl, stun?.port);
  log.info(`tailplane listening on ${url} (data in ${config.dataDir})`);
  return {
    tailnet,
    url,
    acmeDnsPort: dns?.port,
    stats: () => ({ mapStreams: control.mapper.count(), mapStreamsOpened: control.mapper.opened() }),
    close,
  };
}

/** The authoritative responder for the base domain's ACME challenge records (UDP and TCP, one port). */
async function startAcmeDns(config: Config, tailnet: Tailnet, store: ReturnType<typeof createChallengeStore>, log: { info(msg: string): void; warn(obj: object, msg?: string): void }) {
  const { host, port } = parseHostPort(config.certs.dnsListenAddr)!;
  const answer = createAcmeResponder({ zone: () => tailnet.dns().baseDomain, store, nsName: new URL(config.serverUrl).hostname });
  const server = await startDnsServer({ host, port, answer, log });
  log.info(`acme dns responder listening on ${host.includes(':') ? `[${host}]` : host}:${server.port} (udp, tcp)`);
  return server;
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
