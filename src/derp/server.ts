/** The embedded DERP relay: serves /derp upgrades and the /derp/probe endpoints on an existing Node HTTP server. */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { serveClient, type ClientConn, type DerpCounters } from './client.ts';
import { keyPair, nodeKeyString } from './keys.ts';
import { levels, type DerpLogger } from './log.ts';
import { createRegistry } from './registry.ts';
import { KEEPALIVE_MS, PROTOCOL_VERSION } from './wire.ts';

export interface DerpServerOptions {
  /** Curve25519 private key ("privkey:<hex>", hex, or 32 bytes). Random when absent; clients learn it per connection. */
  privateKey?: Uint8Array | string;
  /** Admission: called with "nodekey:<hex>" after the client proves it holds the key. False closes the connection. */
  isAllowed: (nodePublicKey: string) => boolean | Promise<boolean>;
  logger?: DerpLogger;
  /** Interval between KeepAlive frames (plus up to 1/12 of it as jitter); must stay well under the client's 120 s read timeout. */
  keepAliveMs?: number;
  /** How long a new connection may take to send its ClientInfo. */
  handshakeTimeoutMs?: number;
}

export interface DerpStats extends DerpCounters {
  /** Open connections past admission, duplicates included. */
  connections: number;
  /** Distinct node keys connected. */
  clients: number;
  /** Connections still in the handshake or admission check. */
  pending: number;
  /** Connections whose client says this is its home DERP. */
  home: number;
}

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;
type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

const PROBE_PATHS = new Set(['/derp/probe', '/derp/latency-check']);

function pathOf(url: string | undefined): string {
  return (url ?? '/').split('?')[0]!;
}

export function createDerpServer(opts: DerpServerOptions) {
  const keys = keyPair(opts.privateKey);
  const publicHex = Buffer.from(keys.publicKey).toString('hex');
  const log = levels(opts.logger);
  const registry = createRegistry();
  const conns = new Set<ClientConn>();
  const sockets = new Set<Duplex>();
  const detachers: Array<() => void> = [];
  const counters: DerpCounters = {
    packetsRelayed: 0, bytesRelayed: 0, packetsDropped: 0, packetsUnknownDest: 0, rejected: 0, protocolErrors: 0,
  };
  const deps = {
    serverKeys: keys,
    registry,
    isAllowed: opts.isAllowed,
    log,
    counters,
    keepAliveMs: opts.keepAliveMs ?? KEEPALIVE_MS,
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
  };
  let closed = false;

  /** Speaks DERP on an upgraded socket. `fastStart` clients asked us to skip the 101 response. */
  function accept(socket: Duplex, head: Buffer, remote: string, fastStart: boolean): void {
    if (!fastStart) {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n' +
          `Derp-Version: ${PROTOCOL_VERSION}\r\nDerp-Public-Key: ${publicHex}\r\n\r\n`,
      );
    }
    const s = socket as Duplex & { setNoDelay?(v: boolean): void; setTimeout?(ms: number): void };
    s.setNoDelay?.(true);
    s.setTimeout?.(0); // long-lived: no HTTP idle timeout; DERP keep-alives cover liveness
    const conn = serveClient(socket, head, remote, deps);
    conns.add(conn);
    sockets.add(socket);
    socket.once('close', () => {
      conns.delete(conn);
      sockets.delete(socket);
    });
  }

  /** Why an upgrade request to /derp cannot be served, as [status line, body], or null to accept it. */
  function refuse(req: IncomingMessage): [string, string] | null {
    if (closed) return ['503 Service Unavailable', 'DERP server closed'];
    const upgrade = (req.headers.upgrade ?? '').toLowerCase();
    if (req.method !== 'GET' || (upgrade !== 'derp' && upgrade !== 'websocket')) {
      return ['426 Upgrade Required', 'DERP requires connection upgrade'];
    }
    // Real WebSocket framing (the "derp" subprotocol) is only for browser clients; it is not implemented.
    // Old clients sent "Upgrade: WebSocket" but spoke plain DERP, which is served below.
    if (upgrade === 'websocket' && /\bderp\b/i.test(String(req.headers['sec-websocket-protocol'] ?? ''))) {
      return ['501 Not Implemented', 'WebSocket DERP is not supported'];
    }
    return null;
  }

  /** Handles `GET /derp` upgrades. Returns false for other paths so the caller's own upgrade handling runs. */
  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (pathOf(req.url) !== '/derp') return false;
    const refusal = refuse(req);
    if (refusal) {
      const [status, body] = refusal;
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      return true;
    }
    const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    accept(socket, head, remote, req.headers['derp-fast-start'] === '1');
    return true;
  }

  /** Handles the latency probes and plain GET /derp. Returns false for every other request. */
  function handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const path = pathOf(req.url);
    if (PROBE_PATHS.has(path)) {
      const ok = req.method === 'GET' || req.method === 'HEAD';
      res.writeHead(ok ? 200 : 405, { 'Access-Control-Allow-Origin': '*', 'Content-Length': 0 });
      res.end();
      return true;
    }
    if (path === '/derp') {
      const body = 'DERP requires connection upgrade';
      res.writeHead(426, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
      res.end(body);
      return true;
    }
    return false;
  }

  /**
   * Puts this relay in front of the server's current 'request' and 'upgrade' listeners: DERP paths are served
   * here, everything else is passed to them. Listeners added later are not wrapped, so attach last, or call
   * handleRequest/handleUpgrade from your own dispatch instead.
   */
  function attach(server: Server): void {
    const requestListeners = server.listeners('request') as RequestListener[];
    const upgradeListeners = server.listeners('upgrade') as UpgradeListener[];
    const onRequest: RequestListener = (req, res) => {
      if (!handleRequest(req, res)) for (const l of requestListeners) l.call(server, req, res);
    };
    const onUpgrade: UpgradeListener = (req, socket, head) => {
      if (handleUpgrade(req, socket, head)) return;
      if (upgradeListeners.length === 0) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      for (const l of upgradeListeners) l.call(server, req, socket, head);
    };
    server.removeAllListeners('request').on('request', onRequest);
    server.removeAllListeners('upgrade').on('upgrade', onUpgrade);
    detachers.push(() => {
      server.off('request', onRequest).off('upgrade', onUpgrade);
      for (const l of requestListeners) server.on('request', l);
      for (const l of upgradeListeners) server.on('upgrade', l);
    });
  }

  /** Closes every connection of one node key (e.g. the node was deleted). Returns how many were closed. */
  function disconnect(nodePublicKey: string): number {
    let n = 0;
    for (const c of conns) {
      if (c.nodeKey === nodePublicKey) {
        c.close('disconnected by server');
        n++;
      }
    }
    return n;
  }

  /** Runs isAllowed again for every admitted client and closes those no longer allowed. */
  async function recheckAccess(): Promise<number> {
    let n = 0;
    for (const c of [...conns]) {
      if (c.state !== 'active' || !c.nodeKey) continue;
      const ok = await Promise.resolve()
        .then(() => opts.isAllowed(c.nodeKey!))
        .catch(() => false);
      if (!ok) {
        counters.rejected++;
        c.close('no longer allowed');
        n++;
      }
    }
    return n;
  }

  function stats(): DerpStats {
    let pending = 0;
    let home = 0;
    let connections = 0;
    for (const c of conns) {
      if (c.state === 'active') connections++;
      else if (c.state !== 'closed') pending++;
      if (c.state === 'active' && c.preferred) home++;
    }
    return { ...counters, connections, clients: registry.keyCount, pending, home };
  }

  /** Detaches from HTTP servers and drops every connection. */
  function close(): void {
    closed = true;
    for (const d of detachers.splice(0)) d();
    for (const c of [...conns]) c.close('server closing');
    for (const s of [...sockets]) s.destroy();
  }

  return {
    /** "nodekey:<hex>" of the relay's own key (what clients see in the ServerKey frame). */
    publicKey: nodeKeyString(keys.publicKey),
    attach,
    handleUpgrade,
    handleRequest,
    disconnect,
    recheckAccess,
    stats,
    close,
  };
}

export type DerpServer = ReturnType<typeof createDerpServer>;
