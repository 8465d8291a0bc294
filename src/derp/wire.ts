/** The DERP v2 wire vocabulary: frame types, limits, and big-endian frame encoding and incremental decoding. */
import { KEY_LEN } from './keys.ts';

export const PROTOCOL_VERSION = 2;
/** Sent in the ServerKey frame: "DERP" + U+1F511 (key emoji) in UTF-8, 8 bytes. */
export const MAGIC = Buffer.from([0x44, 0x45, 0x52, 0x50, 0xf0, 0x9f, 0x94, 0x91]);
export const FRAME_HEADER_LEN = 1 + 4; // type byte + big-endian u32 length
/** Largest packet payload a client may relay (derp.MaxPacketSize). */
export const MAX_PACKET_SIZE = 64 << 10;
/** Largest frame accepted from a client: a SendPacket carrying a full-size packet. */
export const MAX_FRAME_LEN = KEY_LEN + MAX_PACKET_SIZE;
/** The server sends a KeepAlive this often (plus jitter); clients time out after 120 s. */
export const KEEPALIVE_MS = 60_000;
/** Prefix of a disco message ("TS" + U+1F4AC), which alone earns a PeerGone(NotHere) reply. */
export const DISCO_MAGIC = Buffer.from([0x54, 0x53, 0xf0, 0x9f, 0x92, 0xac]);
const DISCO_MIN_LEN = DISCO_MAGIC.length + KEY_LEN + 24;

export const FrameType = {
  ServerKey: 0x01,
  ClientInfo: 0x02,
  ServerInfo: 0x03,
  SendPacket: 0x04,
  RecvPacket: 0x05,
  KeepAlive: 0x06,
  NotePreferred: 0x07,
  PeerGone: 0x08,
  PeerPresent: 0x09,
  ForwardPacket: 0x0a,
  WatchConns: 0x10,
  ClosePeer: 0x11,
  Ping: 0x12,
  Pong: 0x13,
  Health: 0x14,
  Restarting: 0x15,
} as const;

export const PeerGoneReason = { Disconnected: 0x00, NotHere: 0x01 } as const;

export interface Frame {
  readonly type: number;
  readonly payload: Buffer;
}

/** The JSON a client seals into its ClientInfo frame (derp.ClientInfo). */
export interface ClientInfo {
  version?: number;
  meshKey?: string;
  CanAckPings?: boolean;
  IsProber?: boolean;
  AppName?: string;
}

/** One frame as bytes: type, big-endian length, then the parts in order. */
export function encodeFrame(type: number, ...parts: Uint8Array[]): Buffer {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const out = Buffer.allocUnsafe(FRAME_HEADER_LEN + len);
  out[0] = type;
  out.writeUInt32BE(len, 1);
  let at = FRAME_HEADER_LEN;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function looksLikeDisco(packet: Uint8Array): boolean {
  return packet.length >= DISCO_MIN_LEN && DISCO_MAGIC.equals(packet.subarray(0, DISCO_MAGIC.length));
}

/** Thrown by the reader for input that ends the connection. */
export class FrameError extends Error {}

/**
 * Incremental frame decoder. Input arrives in arbitrary chunks; `next()` yields whole frames. A header
 * announcing more than `maxLen` bytes fails at once, before any payload is buffered.
 */
export function createFrameReader(maxLen = MAX_FRAME_LEN) {
  let chunks: Buffer[] = [];
  let buffered = 0;

  function take(n: number): Buffer {
    const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, buffered);
    chunks = all.length > n ? [all.subarray(n)] : [];
    buffered -= n;
    return all.subarray(0, n);
  }

  function peekHeader(): { type: number; len: number } {
    const head = chunks[0]!.length >= FRAME_HEADER_LEN ? chunks[0]! : Buffer.concat(chunks, buffered);
    return { type: head[0]!, len: head.readUInt32BE(1) };
  }

  return {
    push(chunk: Buffer): void {
      if (chunk.length === 0) return;
      chunks.push(chunk);
      buffered += chunk.length;
    },
    /** The next whole frame, or null until more bytes arrive. Throws FrameError on an oversized frame. */
    next(): Frame | null {
      if (buffered < FRAME_HEADER_LEN) return null;
      const { type, len } = peekHeader();
      if (len > maxLen) throw new FrameError(`frame of ${len} bytes exceeds limit ${maxLen}`);
      if (buffered < FRAME_HEADER_LEN + len) return null;
      const frame = take(FRAME_HEADER_LEN + len);
      return { type, payload: frame.subarray(FRAME_HEADER_LEN) };
    },
    get buffered(): number {
      return buffered;
    },
  };
}

export type FrameReader = ReturnType<typeof createFrameReader>;
