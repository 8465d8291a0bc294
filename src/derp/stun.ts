/** A STUN server (RFC 5389 Binding only) over UDP that tells each client the address its packet came from. */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import { crc32 } from 'node:zlib';
import { levels, type DerpLogger } from './log.ts';

const HEADER_LEN = 20;
const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
const ATTR_FINGERPRINT = 0x8028;
/** Tailscale's request is 40 bytes; anything near an MTU is not a binding request worth answering. */
const MAX_REQUEST_LEN = 576;
/** RFC 5389 §15.5: the FINGERPRINT CRC is XORed with "STUN". */
const FINGERPRINT_XOR = 0x5354554e;

/** The 12-byte transaction id of a valid binding request, or null. Checks FINGERPRINT when present. */
export function parseBindingRequest(msg: Buffer): Buffer | null {
  if (msg.length < HEADER_LEN || msg.length > MAX_REQUEST_LEN) return null;
  if (msg.readUInt16BE(0) !== BINDING_REQUEST || msg.readUInt32BE(4) !== MAGIC_COOKIE) return null;
  const attrsLen = msg.readUInt16BE(2);
  if (attrsLen % 4 !== 0 || HEADER_LEN + attrsLen !== msg.length) return null;
  for (let at = HEADER_LEN; at < msg.length; ) {
    if (at + 4 > msg.length) return null;
    const type = msg.readUInt16BE(at);
    const len = msg.readUInt16BE(at + 2);
    const next = at + 4 + ((len + 3) & ~3);
    if (next > msg.length) return null;
    if (type === ATTR_FINGERPRINT) {
      // FINGERPRINT is last and covers everything before it.
      if (len !== 4 || next !== msg.length) return null;
      if (msg.readUInt32BE(at + 4) !== ((crc32(msg.subarray(0, at)) ^ FINGERPRINT_XOR) >>> 0)) return null;
    }
    at = next;
  }
  return msg.subarray(8, HEADER_LEN);
}

/** A Binding success response carrying XOR-MAPPED-ADDRESS for address:port. */
export function bindingResponse(txId: Buffer, address: string, port: number): Buffer {
  const v4 = v4Of(address);
  const ip = v4 ? ipv4Bytes(v4) : ipv6Bytes(address);
  const out = Buffer.alloc(HEADER_LEN + 8 + ip.length);
  out.writeUInt16BE(BINDING_SUCCESS, 0);
  out.writeUInt16BE(8 + ip.length, 2);
  out.writeUInt32BE(MAGIC_COOKIE, 4);
  txId.copy(out, 8);
  out.writeUInt16BE(ATTR_XOR_MAPPED_ADDRESS, 20);
  out.writeUInt16BE(4 + ip.length, 22);
  out[25] = v4 ? 1 : 2;
  out.writeUInt16BE(port ^ (MAGIC_COOKIE >>> 16), 26);
  // The address is XORed with the cookie followed by the transaction id.
  for (let i = 0; i < ip.length; i++) out[28 + i] = ip[i]! ^ out[4 + i]!;
  return out;
}

/** The IPv4 address inside a v4 or v4-mapped v6 address, else null. */
function v4Of(address: string): string | null {
  if (isIPv4(address)) return address;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : null;
}

function ipv4Bytes(a: string): Buffer {
  return Buffer.from(a.split('.').map(Number));
}

/** 16 bytes of a textual IPv6 address (as dgram reports it: "::" compression, maybe a dotted tail or zone). */
function ipv6Bytes(a: string): Buffer {
  const halves = a.split('%')[0]!.split('::');
  const groups = (s: string): number[] =>
    s === '' ? [] : s.split(':').flatMap((g) => (g.includes('.') ? words16(ipv4Bytes(g)) : [parseInt(g, 16)]));
  const head = groups(halves[0]!);
  const tail = halves.length > 1 ? groups(halves[1]!) : [];
  const zeros = halves.length > 1 ? new Array<number>(8 - head.length - tail.length).fill(0) : [];
  const out = Buffer.alloc(16);
  [...head, ...zeros, ...tail].forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

function words16(b: Buffer): number[] {
  return [b.readUInt16BE(0), b.readUInt16BE(2)];
}

export interface StunServerOptions {
  /** UDP port; 0 picks a free one (the IPv6 socket then reuses the IPv4 one's port). Default 3478. */
  port?: number;
  /** Addresses to bind. Default both wildcards, "0.0.0.0" and "::" (IPv6-only, so the two do not clash). */
  host?: string | string[];
  logger?: DerpLogger;
}

export interface StunServer {
  readonly port: number;
  /** The bound "address:port"s. */
  readonly addresses: string[];
  stats(): { requests: number; ignored: number };
  close(): Promise<void>;
}

function bind(host: string, port: number): Promise<Socket> {
  const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', ipv6Only: isIPv6(host) });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

/** Binds the STUN sockets; resolves once they listen. A wildcard IPv6 bind that fails only logs a warning. */
export async function createStunServer(opts: StunServerOptions = {}): Promise<StunServer> {
  const log = levels(opts.logger);
  const hosts = opts.host === undefined ? ['0.0.0.0', '::'] : [opts.host].flat();
  const counts = { requests: 0, ignored: 0 };
  const sockets: Socket[] = [];
  let port = opts.port ?? 3478;
  try {
    for (const host of hosts) {
      try {
        sockets.push(await bind(host, port));
      } catch (err) {
        if (opts.host !== undefined || host !== '::') throw err;
        log.warn({ err: String(err) }, 'stun: no IPv6 socket');
        continue;
      }
      port = sockets[sockets.length - 1]!.address().port;
    }
  } catch (err) {
    for (const s of sockets) s.close();
    throw err;
  }
  for (const s of sockets) {
    s.on('message', (msg, rinfo) => {
      // A datagram can never stop the server: whatever goes wrong with one is counted and dropped.
      try {
        const txId = parseBindingRequest(msg);
        if (!txId) {
          counts.ignored++;
          return;
        }
        counts.requests++;
        s.send(bindingResponse(txId, rinfo.address, rinfo.port), rinfo.port, rinfo.address);
      } catch (err) {
        counts.ignored++;
        log.debug({ err: (err as Error).message }, 'stun: datagram dropped');
      }
    });
    s.on('error', (err) => log.warn({ err: err.message }, 'stun: socket error'));
  }
  return {
    port,
    addresses: sockets.map((s) => {
      const a = s.address();
      return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    }),
    stats: () => ({ ...counts }),
    close: () => Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => {}),
  };
}
