/** An in-test TS2021 client over raw TCP: sends the /ts2021 upgrade, reads the 101 and handshake reply, wraps the socket. */
import http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { NoiseConn } from '../../src/control/noise/conn.ts';
import { initiate } from '../../src/control/noise/initiator.ts';
import { generateKeyPair, type KeyPair } from '../../src/control/noise/primitives.ts';

/** What the server sent back on an upgrade: the HTTP head, then the first handshake-layer message. */
export interface UpgradeReply {
  readonly status: number;
  readonly head: string;
  /** The 51-byte response or the whole error frame; empty if the server closed first. */
  readonly message: Buffer;
  /** Bytes after the message (records the server sent early). */
  readonly rest: Buffer;
  readonly socket: Socket;
}

/** Opens a TCP connection and sends a raw `/ts2021` upgrade with the given handshake header value. */
export function sendUpgrade(port: number, handshakeB64: string | undefined, extraHead = '', localAddress?: string): Promise<UpgradeReply> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => (socket.destroy(), reject(new Error('no upgrade reply within 5 s'))), 5_000);
    const tryParse = (ended: boolean) => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return ended ? finish(0, buf.toString(), Buffer.alloc(0), Buffer.alloc(0)) : undefined;
      const head = buf.subarray(0, end).toString();
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0);
      const body = buf.subarray(end + 4);
      if (status !== 101) return ended ? finish(status, head, body, Buffer.alloc(0)) : undefined;
      if (body.length < 3) return ended ? finish(status, head, body, Buffer.alloc(0)) : undefined;
      const need = body[0] === 0x03 ? 3 + body.readUInt16BE(1) : 51;
      if (body.length < need) return ended ? finish(status, head, body, Buffer.alloc(0)) : undefined;
      return finish(status, head, body.subarray(0, need), body.subarray(need));
    };
    const finish = (status: number, head: string, message: Buffer, rest: Buffer) => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.pause();
      resolve({ status, head, message, rest, socket });
    };
    socket.on('data', (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      tryParse(false);
    });
    socket.on('end', () => tryParse(true));
    socket.on('error', (err) => (clearTimeout(timer), reject(err)));
    const hs = handshakeB64 === undefined ? '' : `X-Tailscale-Handshake: ${handshakeB64}\r\n`;
    socket.write(`POST /ts2021 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 0\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade\r\n${hs}${extraHead}\r\n`);
  });
}

/** A completed client-side Noise connection. */
export interface NoiseClient {
  readonly conn: NoiseConn;
  readonly machine: KeyPair;
  readonly initiation: Buffer;
  readonly reply: UpgradeReply;
}

/** Dials the server, runs the handshake with the in-test initiator, and returns the encrypted duplex. */
export async function dialNoise(
  port: number,
  serverPublic: Uint8Array,
  options: { version?: number; machine?: KeyPair; localAddress?: string } = {},
): Promise<NoiseClient> {
  const machine = options.machine ?? generateKeyPair();
  const init = initiate(machine, serverPublic, options.version ?? 142);
  const reply = await sendUpgrade(port, init.initiation.toString('base64'), '', options.localAddress);
  if (reply.status !== 101) throw new Error(`upgrade: HTTP ${reply.status}: ${reply.head}`);
  const keys = init.finish(reply.message);
  const conn = new NoiseConn(reply.socket, { ...keys, head: reply.rest });
  reply.socket.resume();
  return { conn, machine, initiation: init.initiation, reply };
}

/** Sends one HTTP/2 request (POST unless told) over a Noise duplex and returns status and body. */
export async function h2Request(session: http2.ClientHttp2Session, path: string, body = '', method = 'POST'): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': method, ':path': path, 'content-type': 'application/json' });
    const chunks: Buffer[] = [];
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    // A stream reset or a connection that dies mid-request emits 'close' without 'end' (or 'error'): without this
    // the promise never settled, and a bench scenario hung with the machine idle.
    req.on('close', () => reject(new Error(`${path}: stream closed before its response ended (HTTP/2 code ${req.rstCode})`)));
    // A GET's stream ends with its headers (node's default for GET and HEAD): nothing more to write.
    if (method !== 'GET') req.end(body);
  });
}

/** Magic that starts tailscale's optional "early payload", sent over Noise before HTTP/2 (controlhttp). */
const earlyPayloadMagic = Buffer.from('\xff\xff\xffTS', 'latin1');
/** 5 magic bytes then a u32 big-endian JSON length: as long as an HTTP/2 frame header, never mistaken for one. */
const earlyHeaderSize = 9;

/**
 * Drops the early payload (tailcfg.EarlyNoise JSON) if the server sends one, as tailscale's client does:
 * headscale always sends it, tailplane never, and Node's HTTP/2 client would choke on it. Holds the first 9
 * bytes until it knows; anything else (an HTTP/2 SETTINGS frame) passes through untouched.
 */
function skipEarlyPayload(inner: Duplex): Duplex {
  let head: Buffer | undefined = Buffer.alloc(0);
  let skip = 0;
  const outer = new Duplex({
    allowHalfOpen: false,
    read: () => void inner.resume(),
    write: (chunk: Buffer, _enc, cb) => void inner.write(chunk, cb),
    final: (cb) => void inner.end(cb),
    destroy: (err, cb) => (inner.destroy(), cb(err)),
  });
  inner.on('data', (chunk: Buffer) => {
    if (head !== undefined) {
      head = Buffer.concat([head, chunk]);
      if (head.length < earlyHeaderSize) return;
      if (head.subarray(0, 5).equals(earlyPayloadMagic)) skip = earlyHeaderSize + head.readUInt32BE(5);
      [chunk, head] = [head, undefined];
    }
    const n = Math.min(skip, chunk.length);
    skip -= n;
    if (chunk.length > n && !outer.push(chunk.subarray(n))) inner.pause();
  });
  inner.on('end', () => {
    if (head?.length) outer.push(head);
    outer.push(null);
  });
  inner.on('error', (err) => outer.destroy(err));
  inner.on('close', () => outer.destroy());
  return outer;
}

/** Opens an HTTP/2 client session (prior knowledge) over a Noise client connection. */
export function h2Session(client: NoiseClient): http2.ClientHttp2Session {
  const session = http2.connect('https://control.test', { createConnection: () => skipEarlyPayload(client.conn) });
  session.on('error', () => {});
  return session;
}

/** Posts one JSON request over a fresh Noise connection (with `machine`, or a fresh machine key) and closes it. */
export async function noisePost(port: number, serverPublic: Uint8Array, path: string, body: unknown, machine?: KeyPair) {
  const client = await dialNoise(port, serverPublic, { machine });
  const session = h2Session(client);
  try {
    const res = await h2Request(session, path, JSON.stringify(body));
    return { status: res.status, json: res.body.length ? JSON.parse(res.body.toString()) : null };
  } finally {
    session.destroy();
    client.conn.destroy();
  }
}

/** One request over a fresh Noise connection to `serverUrl` with the given machine key, as a node's tailscaled makes it. */
export async function noiseRequest(serverUrl: string, machine: KeyPair, path: string, method = 'GET', body = ''): Promise<{ status: number; json: any }> {
  const key = (await (await fetch(`${serverUrl}/key?v=130`)).json()) as { publicKey: string };
  const client = await dialNoise(Number(new URL(serverUrl).port), Buffer.from(key.publicKey.slice('mkey:'.length), 'hex'), { machine });
  const session = h2Session(client);
  try {
    const res = await h2Request(session, path, body, method);
    const text = res.body.toString();
    return { status: res.status, json: text.startsWith('{') ? JSON.parse(text) : text };
  } finally {
    session.destroy();
    client.conn.destroy();
  }
}
