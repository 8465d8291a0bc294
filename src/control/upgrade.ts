/** Serves `GET /key` and the `/ts2021` upgrade on an http.Server: Noise handshake, record transport, then HTTP/2 per connection. */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { pathOf, targetOf } from '../guard/http.ts';
import { Http2Connection } from './http2/connection.ts';
import type { Http2Request, Http2Response } from './http2/stream.ts';
import { ErrorCode } from './http2/frames.ts';
import { NoiseConn } from './noise/conn.ts';
import { buildErrorFrame, HandshakeError, initiationVersion, type HandshakeResult } from './noise/handshake.ts';
import { createHandshakePool, type HandshakePool } from './noise/handshake-pool.ts';
import { machineKeyText, zeroKeyText, type KeyPair } from './noise/keys.ts';

/** The Upgrade token of the control protocol; clients compare the 101's header case-sensitively (trap T9). */
export const upgradeProtocol = 'tailscale-control-protocol';
/** Request header carrying the padded standard base64 of the 101-byte initiation. */
export const handshakeHeader = 'x-tailscale-handshake';
/** Always at the host root, whatever path the login server URL has (trap T10). */
export const upgradePath = '/ts2021';
export const keyPath = '/key';
/** Oldest capability version served: 113 is tailscale v1.80.0, the oldest client this server supports. */
export const defaultMinVersion = 113;
/** Upper bound on the base64 header: 101 bytes encode to 136 characters; anything much longer is garbage. */
const maxHandshakeHeaderLength = 256;
/** TCP keep-alive probe delay for long-lived control connections. */
const keepAliveMs = 30_000;
/** Register and map requests are small; the client itself reads at most 1 MiB back. */
const maxRequestBodyBytes = 1 << 20;

/** Sent with the first handshake-layer message in one write (one syscall): the response or an error frame. */
const switchingProtocols = Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${upgradeProtocol}\r\nConnection: upgrade\r\n\r\n`, 'latin1');

/** The authenticated peer of one Noise connection. */
export interface NoisePeer {
  /** The client's machine public key, `mkey:<64 hex>`, proven by the handshake. */
  readonly machineKey: string;
  /** The client's capability version from the handshake header. */
  readonly version: number;
  /** The connection's source IP address, for per-source limits. */
  readonly source: string;
}

/** Handles one HTTP/2 request over Noise. May return a promise; rejections become a 500 or a stream reset. */
export type NoiseRequestHandler = (req: Http2Request, res: Http2Response, peer: NoisePeer) => void | Promise<void>;

/** The subset of pino's API this module uses. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface NoiseUpgradeOptions {
  readonly keyPair: KeyPair;
  readonly onRequest: NoiseRequestHandler;
  readonly logger: Logger;
  /** Refuse clients whose handshake version is lower; defaults to defaultMinVersion. */
  readonly minVersion?: number;
  /** Runs the Noise handshakes (on worker threads, handshake-pool.ts); closed with the upgrade. Absent, they run here. */
  readonly handshakes?: HandshakePool;
  /** Deadlines on a connection past the handshake; absent, a connection may wait forever. */
  readonly timeouts?: NoiseTimeouts;
}

/** How long a Noise connection may keep the server waiting (a map long-poll is an open request, not idle). */
export interface NoiseTimeouts {
  /** With no request open, including before the first one, the connection is closed after this long. */
  readonly idleMs: number;
  /** A started record must be complete within this. */
  readonly recordMs: number;
  /** A request's body must have fully arrived within this, or reading it fails with a 408 BodyError. */
  readonly requestMs: number;
}

/** The control-plane entry points; `attach` wires them into a server, or route to the handlers yourself. */
export interface NoiseUpgrade {
  /** Listens for `request` (GET /key) and `upgrade` (/ts2021) on the server, leaving other paths to other listeners. */
  attach(server: Server): void;
  /** Answers GET /key and non-upgrade /ts2021 requests; returns false for any other path. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean;
  /** Takes over a /ts2021 upgrade; returns false (socket untouched) for any other path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Number of live Noise connections. */
  connectionCount(): number;
  /**
   * Shutdown: sends each connection's HTTP/2 GOAWAY (the client reconnects) and waits until its streams are
   * done, at most `graceMs`, then destroys whatever is left.
   */
  close(graceMs?: number): Promise<void>;
}

/** Creates the /key and /ts2021 handlers around the server's Noise key pair. */
export function createNoiseUpgrade(options: NoiseUpgradeOptions): NoiseUpgrade {
  const { keyPair, logger } = options;
  const handshakes = options.handshakes ?? createHandshakePool(keyPair, { workers: 0 });
  const minVersion = options.minVersion ?? defaultMinVersion;
  /** Each live connection and the HTTP/2 connection on it. */
  const live = new Map<NoiseConn, Http2Connection>();
  /**
   * Set by close(): clients redial as soon as their session ends, and the listener still accepts until the
   * HTTP server closes after this; a session made then would hold that close open until the client gave up.
   */
  let closing = false;
  const keyBody = JSON.stringify({ legacyPublicKey: zeroKeyText('mkey:'), publicKey: machineKeyText(keyPair.publicKey) });

  const handleRequest = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = targetOf(req.url);
    if (url === undefined) return false;
    if (url.pathname === keyPath) {
      serveKey(req, res, url, keyBody);
      return true;
    }
    if (url.pathname === upgradePath) {
      sendPlain(res, 426, `${upgradePath} needs "Upgrade: ${upgradeProtocol}"`);
      return true;
    }
    return false;
  };

  const handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    if (pathOf(req.url) !== upgradePath) return false;
    const remote = remoteOf(socket);
    socket.on('error', (err) => logger.debug({ remote, err: err.message }, 'noise: socket error'));
    if (closing) {
      answerPlain(socket, '503 Service Unavailable');
      return true;
    }
    const init = checkUpgradeRequest(req);
    if (typeof init === 'string') {
      logger.debug({ remote, reason: init }, 'noise: upgrade refused');
      answerPlain(socket, '400 Bad Request', init);
      return true;
    }
    tuneSocket(socket);
    const refusal = versionRefusal(init, minVersion);
    if (refusal) {
      logger.info({ remote, reason: refusal }, 'noise: handshake refused');
      refuse(socket, refusal);
      return true;
    }
    const failed = (err: unknown) => {
      logger.debug({ remote, err: (err as Error).message }, 'noise: handshake failed');
      refuse(socket, err instanceof HandshakeError ? err.message : 'handshake failed');
    };
    let hs: HandshakeResult | Promise<HandshakeResult>;
    try {
      hs = handshakes.respond(init);
    } catch (err) {
      failed(err);
      return true;
    }
    if (hs instanceof Promise) {
      // The client waits for the response before it sends anything; it may have given up meanwhile.
      hs.then(
        (r) => socket.destroyed || establish(r, socket, head, remote),
        (err) => socket.destroyed || failed(err),
      );
    } else establish(hs, socket, head, remote);
    return true;
  };

  /** Answers the handshake and serves HTTP/2 over the Noise connection it keys. */
  const establish = (hs: HandshakeResult, socket: Duplex, head: Buffer, remote: string | undefined) => {
    if (closing) return void socket.destroy(); // its handshake finished on a worker after close() began
    socket.write(Buffer.concat([switchingProtocols, hs.response]));
    const peer: NoisePeer = { machineKey: hs.machineKey, version: hs.version, source: (socket as Partial<Socket>).remoteAddress ?? '' };
    const conn = new NoiseConn(socket, { txKey: hs.txKey, rxKey: hs.rxKey, head, recordTimeoutMs: options.timeouts?.recordMs });
    // Debug, as its close is: every client reconnects after a restart, and a line each was 3 % of a 10,000-node
    // mass connect's CPU. Registrations and logins are in the audit log; refusals and failures still log.
    logger.debug({ remote, machineKey: peer.machineKey, version: peer.version }, 'noise: connection established');
    conn.on('error', (err) => logger.debug({ remote, machineKey: peer.machineKey, err: err.message }, 'noise: connection error'));
    conn.on('close', () => {
      live.delete(conn);
      logger.debug({ remote, machineKey: peer.machineKey }, 'noise: connection closed');
    });
    live.set(conn, serveHttp2(conn, peer, options.onRequest, logger, options.timeouts));
  };

  return {
    attach(server) {
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        if (!handleRequest(req, res) && server.listenerCount('request') === 1) sendPlain(res, 404, 'not found');
      });
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (!handleUpgrade(req, socket, head) && server.listenerCount('upgrade') === 1) {
          socket.on('error', () => {});
          answerPlain(socket, '404 Not Found');
        }
      });
    },
    handleRequest,
    handleUpgrade,
    connectionCount: () => live.size,
    async close(graceMs = 1_000) {
      closing = true;
      const closed = [...live.keys()].map((conn) => new Promise((resolve) => conn.once('close', resolve)));
      for (const h2 of live.values()) h2.close();
      const timer = setTimeout(() => live.forEach((_, conn) => conn.destroy()), graceMs);
      await Promise.all([...closed, handshakes.close()]);
      clearTimeout(timer);
    },
  };
}

/** Validates method, Upgrade and the handshake header; returns the initiation bytes or the reason to refuse. */
function checkUpgradeRequest(req: IncomingMessage): Buffer | string {
  if (req.method !== 'POST' && req.method !== 'GET') return `method ${req.method} not allowed`;
  if ((req.headers.upgrade ?? '').toLowerCase() !== upgradeProtocol) return `unsupported upgrade protocol`;
  const b64 = req.headers[handshakeHeader];
  if (typeof b64 !== 'string' || b64.length === 0) return `missing ${handshakeHeader} header`;
  if (b64.length > maxHandshakeHeaderLength || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    return `invalid ${handshakeHeader} header`;
  }
  return Buffer.from(b64, 'base64');
}

/**
 * Returns why a client is refused for its version, or undefined. The refusal is an error frame sent instead of
 * the handshake response (before any key agreement), so the Go client reports `server error: "<text>"` rather
 * than an unexplained EOF after a completed handshake; the version is cleartext, so nothing is lost by not
 * authenticating it first. Malformed framing is also refused here, as controlbase does.
 */
function versionRefusal(init: Buffer, minVersion: number): string | undefined {
  let version: number;
  try {
    version = initiationVersion(init);
  } catch (err) {
    if (err instanceof HandshakeError) return err.message;
    throw err;
  }
  if (version < minVersion) {
    return `unsupported client version ${version}: this control server needs capability version ${minVersion} or newer (tailscale v1.80+)`;
  }
  return undefined;
}

/** Answers an upgrade request with a plain HTTP response and closes the socket once it is written. */
function answerPlain(socket: Duplex, status: string, text = ''): void {
  const type = text ? 'Content-Type: text/plain\r\n' : '';
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n${type}Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`, () => socket.destroy());
}

/** Switches protocols as controlhttpserver does, then sends the error frame and closes. */
function refuse(socket: Duplex, text: string): void {
  socket.end(Buffer.concat([switchingProtocols, buildErrorFrame(text)]), () => socket.destroy());
}

/** Control connections are long-lived: no idle timeout, keep-alives on, small writes not delayed (trap T42). */
function tuneSocket(socket: Duplex): void {
  const s = socket as Partial<Socket>;
  s.setTimeout?.(0);
  s.setNoDelay?.(true);
  s.setKeepAlive?.(true, keepAliveMs);
}

function remoteOf(socket: Duplex): string | undefined {
  const s = socket as Partial<Socket>;
  return s.remoteAddress ? `${s.remoteAddress}:${s.remotePort}` : undefined;
}

/** HTTP/2 (prior knowledge, trap T11) on each Noise connection, so each request knows its peer. */
function serveHttp2(conn: NoiseConn, peer: NoisePeer, onRequest: NoiseRequestHandler, logger: Logger, timeouts: NoiseTimeouts | undefined): Http2Connection {
  return new Http2Connection(conn, {
    maxBodyBytes: maxRequestBodyBytes,
    idleMs: timeouts?.idleMs,
    bodyMs: timeouts?.requestMs,
    onProblem: (message) => logger.debug({ machineKey: peer.machineKey, err: message }, 'noise: http2 connection closed'),
    onRequest(req, res) {
      const fail = (err: unknown) => {
        logger.warn({ machineKey: peer.machineKey, path: req.url, err: (err as Error)?.message }, 'noise: request handler failed');
        if (!res.headersSent) res.writeHead(500).end();
        else res.reset(ErrorCode.internal);
      };
      try {
        const done = onRequest(req, res, peer);
        if (done && typeof done.then === 'function') done.then(undefined, fail);
      } catch (err) {
        fail(err);
      }
    },
  });
}

function serveKey(req: IncomingMessage, res: ServerResponse, url: URL, body: string): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendPlain(res, 405, 'method not allowed');
    return;
  }
  const v = url.searchParams.get('v');
  if (v !== null && !/^\d{1,5}$/.test(v)) {
    sendPlain(res, 400, 'invalid v');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function sendPlain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
