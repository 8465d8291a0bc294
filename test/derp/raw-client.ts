/** A bare-bones DERP client over TCP for the unit tests: it can speak the protocol correctly or break it on purpose. */
import { connect, type Socket } from 'node:net';
import { x25519 } from '@noble/curves/ed25519.js';
import { seal } from '../../src/derp/naclbox.ts';
import { FrameType, MAGIC, createFrameReader, encodeFrame, type Frame } from '../../src/derp/wire.ts';

export interface RawClient {
  readonly socket: Socket;
  readonly publicKey: Uint8Array;
  /** The server's key from its ServerKey frame. */
  serverKey: Uint8Array;
  send(bytes: Uint8Array): void;
  /** Seals and sends a ClientInfo frame (JSON of `info`, or raw bytes) to `to`, default the real server key. */
  sendClientInfo(info?: object | Buffer, to?: Uint8Array): void;
  /** The next frame, skipping those `skip` rejects; null if the connection closed first. */
  nextFrame(skip?: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame | null>;
  /** Resolves when the server closes the connection. */
  closed: Promise<void>;
}

export function newKey(): { privateKey: Uint8Array; publicKey: Uint8Array; text: string } {
  const privateKey = x25519.utils.randomSecretKey();
  const publicKey = x25519.getPublicKey(privateKey);
  return { privateKey, publicKey, text: 'nodekey:' + Buffer.from(publicKey).toString('hex') };
}

/** Connects, upgrades GET /derp, and waits for the ServerKey frame. */
export async function rawClient(port: number, key = newKey()): Promise<RawClient> {
  const socket = connect(port, '127.0.0.1');
  const reader = createFrameReader(1 << 20);
  const frames: Frame[] = [];
  let wake: (() => void) | null = null;
  let ended = false;
  let headerDone = false;
  let pre = Buffer.alloc(0);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => {});
  socket.on('close', () => {
    ended = true;
    wake?.();
  });
  socket.on('data', (chunk: Buffer) => {
    if (!headerDone) {
      pre = Buffer.concat([pre, chunk]);
      const end = pre.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!pre.toString('latin1').startsWith('HTTP/1.1 101')) return void socket.destroy();
      headerDone = true;
      chunk = pre.subarray(end + 4);
    }
    reader.push(chunk);
    for (let f = reader.next(); f; f = reader.next()) frames.push(f);
    wake?.();
  });
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write('GET /derp HTTP/1.1\r\nHost: test\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n');

  async function nextFrame(skip: (f: Frame) => boolean = () => false, timeoutMs = 5000): Promise<Frame | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (frames.length) {
        const f = frames.shift()!;
        if (!skip(f)) return f;
      }
      if (ended) return null;
      if (Date.now() > deadline) throw new Error('timed out waiting for a frame');
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 50);
      });
      wake = null;
    }
  }

  const first = await nextFrame();
  if (!first || first.type !== FrameType.ServerKey || !MAGIC.equals(first.payload.subarray(0, 8))) {
    throw new Error('no server key frame');
  }
  const client: RawClient = {
    socket,
    publicKey: key.publicKey,
    serverKey: first.payload.subarray(8, 40),
    send: (bytes) => socket.write(bytes),
    sendClientInfo(info = { version: 2, CanAckPings: true }, to = client.serverKey) {
      const msg = Buffer.isBuffer(info) ? info : Buffer.from(JSON.stringify(info));
      const box = seal(msg, key.privateKey, to);
      socket.write(encodeFrame(FrameType.ClientInfo, key.publicKey, box));
    },
    nextFrame,
    closed,
  };
  return client;
}

/** A client through the handshake: ServerInfo received. */
export async function admittedClient(port: number, key = newKey()): Promise<RawClient> {
  const c = await rawClient(port, key);
  c.sendClientInfo();
  const f = await c.nextFrame();
  if (f?.type !== FrameType.ServerInfo) throw new Error(`expected ServerInfo, got ${f?.type}`);
  return c;
}
