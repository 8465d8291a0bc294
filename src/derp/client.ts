/** One DERP client connection: the handshake (ServerKey, ClientInfo, admission, ServerInfo), then its frame loop. */
import type { Duplex } from 'node:stream';
import { KEY_LEN, nodeKeyString, type KeyPair } from './keys.ts';
import { NONCE_LEN, TAG_LEN, open, seal } from './naclbox.ts';
import type { Log } from './log.ts';
import type { Peer, Registry } from './registry.ts';
import {
  FrameError, FrameType, MAGIC, MAX_FRAME_LEN, PROTOCOL_VERSION, createFrameReader, encodeFrame,
  type ClientInfo, type Frame,
} from './wire.ts';

/** Server-wide counters the connections bump; read through DerpServer.stats(). */
export interface DerpCounters {
  packetsRelayed: number;
  bytesRelayed: number;
  packetsDropped: number;
  packetsUnknownDest: number;
  rejected: number;
  protocolErrors: number;
}

export interface ClientDeps {
  readonly serverKeys: KeyPair;
  readonly registry: Registry;
  readonly isAllowed: (nodeKey: string) => boolean | Promise<boolean>;
  readonly log: Log;
  readonly counters: DerpCounters;
  readonly keepAliveMs: number;
  readonly handshakeTimeoutMs: number;
}

export type ClientState = 'handshake' | 'verifying' | 'active' | 'closed';

/** Packets to a reader whose socket holds this many unsent bytes are dropped, as DERP's bounded queues do. */
const SOFT_QUEUE_BYTES = 512 << 10;
/** A reader this far behind even on control frames is hung; cut it off. */
const HARD_QUEUE_BYTES = 4 << 20;
/** Pings carry 8 bytes; allow a little for future extensions, as derpserver does. */
const MAX_PING_LEN = 1000;
const MIN_CLIENT_INFO_LEN = KEY_LEN + NONCE_LEN + TAG_LEN;
/** PeerGone(NotHere) replies: a burst of 3, then one per second (derpserver's peerGoneLim). */
const NOT_HERE_BURST = 3;

const KEEPALIVE_FRAME = encodeFrame(FrameType.KeepAlive);

/** Takes over an upgraded socket (the 101 response already written) and serves it until it closes. */
export function serveClient(socket: Duplex, head: Buffer, remote: string, deps: ClientDeps) {
  const { registry, log, counters } = deps;
  const reader = createFrameReader(MAX_FRAME_LEN);
  let state: ClientState = 'handshake';
  let peer: Peer | undefined;
  let nodeKey: string | undefined;
  let preferred = false;
  let corked = false;
  let keepAlive: NodeJS.Timeout | undefined;
  let notHereTokens = NOT_HERE_BURST;
  let notHereRefill = Date.now();
  const handshakeTimer = setTimeout(() => close('no client info in time'), deps.handshakeTimeoutMs).unref();

  function write(frame: Buffer, droppable: boolean): boolean {
    if (state === 'closed' || socket.destroyed) return false;
    if (socket.writableLength > HARD_QUEUE_BYTES) {
      close('reader too slow');
      return false;
    }
    if (droppable && socket.writableLength > SOFT_QUEUE_BYTES) return false;
    if (!corked) {
      // Batch the frames written in this tick into one syscall.
      corked = true;
      socket.cork();
      process.nextTick(() => {
        corked = false;
        socket.uncork();
      });
    }
    socket.write(frame);
    return true;
  }

  function allowNotHere(): boolean {
    const now = Date.now();
    notHereTokens = Math.min(NOT_HERE_BURST, notHereTokens + (now - notHereRefill) / 1000);
    notHereRefill = now;
    if (notHereTokens < 1) return false;
    notHereTokens -= 1;
    return true;
  }

  function close(reason: string): void {
    if (state === 'closed') return;
    log.debug({ remote, nodeKey, reason }, 'derp: closing client');
    teardown();
    socket.destroy();
  }

  function teardown(): void {
    if (state === 'closed') return;
    state = 'closed';
    clearTimeout(handshakeTimer);
    clearInterval(keepAlive);
    if (peer) registry.remove(peer);
  }

  /** A protocol violation: count it and hang up. */
  function fail(reason: string): void {
    counters.protocolErrors++;
    log.info({ remote, nodeKey, reason }, 'derp: bad client input');
    close(reason);
  }

  function onClientInfo(f: Frame): void {
    if (f.type !== FrameType.ClientInfo) return fail(`frame type ${f.type} before client info`);
    if (f.payload.length < MIN_CLIENT_INFO_LEN) return fail('short client info');
    const rawKey = Buffer.from(f.payload.subarray(0, KEY_LEN));
    const msg = open(f.payload.subarray(KEY_LEN), deps.serverKeys.privateKey, rawKey);
    if (!msg) return fail('client info does not open');
    let info: unknown;
    try {
      info = JSON.parse(Buffer.from(msg).toString('utf8'));
    } catch {
      return fail('client info is not JSON');
    }
    if (typeof info !== 'object' || info === null || Array.isArray(info)) return fail('client info is not an object');
    nodeKey = nodeKeyString(rawKey);
    state = 'verifying';
    Promise.resolve()
      .then(() => deps.isAllowed(nodeKey!))
      .then(
        (ok) => (ok ? admit(rawKey, info as ClientInfo) : reject('not allowed')),
        (err: unknown) => reject(`admission check failed: ${String(err)}`),
      )
      .catch((err: unknown) => close(`admission failed: ${String(err)}`));
  }

  function reject(reason: string): void {
    if (state === 'closed') return;
    counters.rejected++;
    log.info({ remote, nodeKey, reason }, 'derp: client rejected');
    close(reason);
  }

  function admit(rawKey: Buffer, info: ClientInfo): void {
    if (state === 'closed') return;
    clearTimeout(handshakeTimer);
    const serverInfo = Buffer.from(JSON.stringify({ version: PROTOCOL_VERSION }));
    write(encodeFrame(FrameType.ServerInfo, seal(serverInfo, deps.serverKeys.privateKey, rawKey)), false);
    peer = { key: rawKey.toString('hex'), rawKey, write, allowNotHere, close };
    const others = registry.add(peer);
    state = 'active';
    log.debug({ remote, nodeKey, version: info.version, duplicates: others }, 'derp: client connected');
    // Up to ~5 s of jitter at the default 60 s, so reconnect storms do not keep their keep-alives in step.
    const jitter = Math.floor((Math.random() * deps.keepAliveMs) / 12);
    keepAlive = setInterval(() => write(KEEPALIVE_FRAME, false), deps.keepAliveMs + jitter).unref();
    pump(); // frames that arrived while admission was pending
  }

  function onFrame(f: Frame): void {
    switch (f.type) {
      case FrameType.SendPacket:
        return onSendPacket(f.payload);
      case FrameType.NotePreferred:
        preferred = f.payload[0] === 1;
        return;
      case FrameType.Ping:
        if (f.payload.length < 8 || f.payload.length > MAX_PING_LEN) return fail('bad ping length');
        write(encodeFrame(FrameType.Pong, f.payload.subarray(0, 8)), false);
        return;
      case FrameType.WatchConns:
      case FrameType.ClosePeer:
      case FrameType.ForwardPacket:
        // Mesh-only frames; this relay has no mesh, so like derpserver without a mesh key it hangs up.
        return fail(`mesh frame ${f.type} without mesh privileges`);
      default:
        return; // pongs, keep-alives and future frame types are ignored
    }
  }

  function onSendPacket(payload: Buffer): void {
    if (payload.length < KEY_LEN) return fail('short send packet');
    const packet = payload.subarray(KEY_LEN);
    const result = registry.relay(peer!, payload.subarray(0, KEY_LEN), packet);
    if (result === 'sent') {
      counters.packetsRelayed++;
      counters.bytesRelayed += packet.length;
    } else if (result === 'dropped') {
      counters.packetsDropped++;
    } else {
      counters.packetsUnknownDest++;
    }
  }

  /** Handles every whole frame buffered so far, unless the admission check is still running. */
  function pump(): void {
    try {
      for (let f = reader.next(); f && state !== 'closed'; f = state === 'verifying' ? null : reader.next()) {
        if (state === 'handshake') onClientInfo(f);
        else onFrame(f);
      }
    } catch (err) {
      if (err instanceof FrameError) return fail(err.message);
      throw err;
    }
    if (state === 'verifying' && reader.buffered > MAX_FRAME_LEN * 2) fail('too much input before admission');
  }

  socket.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    if (state === 'handshake' || state === 'active') pump();
  });
  socket.on('error', (err) => log.debug({ remote, nodeKey, err: err.message }, 'derp: socket error'));
  socket.on('close', teardown);
  socket.on('end', () => close('client hung up'));

  write(encodeFrame(FrameType.ServerKey, MAGIC, deps.serverKeys.publicKey), false);
  reader.push(head);
  pump();

  return {
    get nodeKey(): string | undefined {
      return nodeKey;
    },
    get state(): ClientState {
      return state;
    },
    get preferred(): boolean {
      return preferred;
    },
    close,
  };
}

export type ClientConn = ReturnType<typeof serveClient>;
