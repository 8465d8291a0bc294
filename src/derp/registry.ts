/** The relay's table of connected clients: routes packets by node key and tells senders when a peer is gone. */
import { encodeFrame, FrameType, PeerGoneReason, looksLikeDisco } from './wire.ts';

/** One accepted client connection, as the registry sees it. */
export interface Peer {
  /** Hex of the node public key. */
  readonly key: string;
  readonly rawKey: Buffer;
  /** Queues a frame. Droppable frames are refused (false) while the peer's socket is backed up. */
  write(frame: Buffer, droppable: boolean): boolean;
  /** Lets the peer rate-limit PeerGone(NotHere) replies to its disco probes. */
  allowNotHere(): boolean;
  close(reason: string): void;
}

export type RelayResult = 'sent' | 'dropped' | 'unknown';

export function createRegistry() {
  // Connections per key, oldest first. The newest is the active one; older duplicates stay open but idle.
  const byKey = new Map<string, Peer[]>();
  // Source key -> connections that received packets from it, to be told when it disconnects.
  const goneWatchers = new Map<string, Set<Peer>>();
  // Connection -> source keys it is watching, so a closing connection can unsubscribe.
  const watching = new Map<Peer, Set<string>>();

  function peerGoneFrame(rawKey: Buffer, reason: number): Buffer {
    return encodeFrame(FrameType.PeerGone, rawKey, Buffer.of(reason));
  }

  function watch(receiver: Peer, src: string): void {
    let keys = watching.get(receiver);
    if (!keys) watching.set(receiver, (keys = new Set()));
    if (keys.has(src)) return;
    keys.add(src);
    let set = goneWatchers.get(src);
    if (!set) goneWatchers.set(src, (set = new Set()));
    set.add(receiver);
  }

  function unwatchAll(receiver: Peer): void {
    for (const src of watching.get(receiver) ?? []) {
      const set = goneWatchers.get(src);
      set?.delete(receiver);
      if (set?.size === 0) goneWatchers.delete(src);
    }
    watching.delete(receiver);
  }

  /** Tells everyone who heard from `gone` that it has left this server. */
  function notifyGone(gone: Peer): void {
    const frame = peerGoneFrame(gone.rawKey, PeerGoneReason.Disconnected);
    for (const w of goneWatchers.get(gone.key) ?? []) w.write(frame, false);
    goneWatchers.delete(gone.key);
  }

  function active(key: string): Peer | undefined {
    const list = byKey.get(key);
    return list?.[list.length - 1];
  }

  return {
    /** Registers a connection; it becomes the active one for its key. Returns how many it now shares the key with. */
    add(p: Peer): number {
      const list = byKey.get(p.key) ?? [];
      list.push(p);
      byKey.set(p.key, list);
      return list.length - 1;
    },

    remove(p: Peer): void {
      unwatchAll(p);
      const list = byKey.get(p.key);
      const i = list?.indexOf(p) ?? -1;
      if (!list || i < 0) return;
      list.splice(i, 1);
      if (list.length > 0) return; // an older duplicate takes over; the key is still here
      byKey.delete(p.key);
      notifyGone(p);
    },

    active,

    /** Forwards a packet from src to the active connection of dstKey. */
    relay(src: Peer, dstRaw: Buffer, packet: Buffer): RelayResult {
      const dstKey = dstRaw.toString('hex');
      const dst = active(dstKey);
      if (!dst) {
        // Only disco probes earn a reply: they are what magicsock uses to notice a stale DERP route.
        if (looksLikeDisco(packet) && src.allowNotHere()) src.write(peerGoneFrame(dstRaw, PeerGoneReason.NotHere), false);
        return 'unknown';
      }
      if (!dst.write(encodeFrame(FrameType.RecvPacket, src.rawKey, packet), true)) return 'dropped';
      watch(dst, src.key);
      return 'sent';
    },

    /** Every connection, including idle duplicates. */
    *all(): IterableIterator<Peer> {
      for (const list of byKey.values()) yield* list;
    },

    get keyCount(): number {
      return byKey.size;
    },
  };
}

export type Registry = ReturnType<typeof createRegistry>;
