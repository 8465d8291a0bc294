/**
 * The mapper: keeps every open map stream current with deltas. Change events are batched for a few
 * milliseconds; each flush works out, per session, only what that node must learn — peers added, removed,
 * patched or replaced, a new packet filter, SSH policy, DNS or self node — and never reopens a stream. A
 * flush that reaches many streams yields to the event loop every few milliseconds, so requests are served
 * and frames leave meanwhile.
 * Each peer is serialized once per change and its JSON copied into every map that carries it, and a flush
 * compresses each distinct delta once, whatever the number of streams it goes to.
 */
import { servingRoutes } from '../domain/routes.ts';
import type { CompiledPolicy, FilterRule, NodeView } from '../policy/index.ts';
import type { Change } from '../state/changes.ts';
import type { PolicyView } from '../state/policy-view.ts';
import type { PrimaryRoutes } from '../state/routes.ts';
import type { FrameEncoder } from './frames.ts';
import { fullMapParts, nodeDnsConfig, profileOf, wireNode, type FullMapParts, type NetmapContext } from './netmap.ts';
import { appendPiece, createSharedParts, type Piece } from './pieces.ts';
import type { PeerPatch, UserProfile, WireNode } from './wire.ts';

/** One open streaming map poll. */
export interface Session {
  readonly nodeId: number;
  /** Writes an encoded frame; streams that get the same delta share one buffer. */
  send(frame: Buffer): void;
  /** Ends the stream (the node was deleted, or a newer stream replaced this one). */
  end(): void;
}

interface SessionState {
  readonly session: Session;
  /**
   * The policy view last applied: a recompile that carried it over (same object) changed nothing for this node.
   * Its sorted `reach` holds the ids this session may see (and maybe its own, never sent).
   */
  view: NodeView;
  /**
   * The version of each peer last sent, at the position of its id in view.reach (0: not sent). A Map per session
   * took ~40 bytes per peer, quadratic with allow-all (1 GB of a 5,000-node tailnet's server); this takes 8.
   */
  sent: Float64Array;
  profiles: Set<number>;
  selfJson: string;
  /** The packet filter last sent. */
  filter: Filter;
  sshJson: string;
  /** DNSConfig and Domain last sent: the config carries the node's own name (CertDomains), so a rename changes it too. */
  dnsJson: string;
}

/** A member of a delta: its name and its JSON, as text or in pieces (undefined: left out, as JSON.stringify does). */
type Member = [string, string | readonly Piece[] | undefined];

/** A packet filter's JSON in pieces (compared with shared.same: no key held per filter, one per node). */
type Filter = readonly Piece[];

interface PeerEntry {
  wire: WireNode;
  json: string;
  /**
   * Unique across all peers and their lifetimes: a node added under a deleted node's id (SQLite reused the
   * highest id before schema 8, and may once more for ids deleted before it) never matches what a session holds
   * of the old one.
   */
  version: number;
  /** The version this one replaced (same node). */
  previous?: number;
  /** When the node's key expires (ms): past it, the cached form (MachineAuthorized) is stale. */
  expiresAt: number;
  /** How to go from the previous version to this one with PeersChangedPatch, when only patchable fields changed. */
  patch?: PeerPatch;
}

/** Flush delay after a quiet spell: a lone change (an endpoint moved, a tag set) goes out almost at once. */
const batchMs = 15;
/**
 * Flush delay while changes keep coming (two flushes ended within busyWindowMs): a fleet joining at 50/s
 * otherwise got one flush per join, so each of a group's streams was sent a frame per join (one seal, one
 * HTTP/2 write, one syscall each), and one policy compile per join. One recent flush is not enough: a lone
 * join is two changes in a row (registered, then online with endpoints), and its second must not wait.
 * Not longer: 250 ms halved the frames of a 1,000-node allow-all restart, but made a 2,000-node grouped churn
 * wave reach everyone 150-250 ms later (bench-results/profiles.md, session 12).
 */
const busyBatchMs = 100;
/**
 * A flush yields to the event loop after this long. One that writes to every stream of a 10,000-node tailnet
 * took 0.4-0.8 s, during which no request was served and no frame reached a socket: in a churn wave the
 * registrations waited behind each flush (500 joins took 2.4-3.1 s against 1.8-2.0 s in slices).
 */
const sliceMs = 10;
const busyWindowMs = 250;
/**
 * Under load the delay grows to flushCostRatio times the last flush's duration (up to this cap), so flushing
 * takes at most a quarter of the server's time. A flush costs one policy compile and a frame to every stream
 * that sees a change, whatever the batch size: with allow-all, every stream on every flush. Clients that read
 * as fast as tailscaled does showed it: at 1,000 allow-all nodes a mass connect got ~100 frames per node,
 * and the flushes took a third of the server's CPU.
 */
const flushCostRatio = 3;
const maxBatchMs = 500;
/**
 * A batch this large when its delay is up is a storm (a wave of logouts and joins, a fleet coming back), which
 * will likely reach every stream: it is held while its changes keep coming, until none came for stormGapMs,
 * and at least three times as long as a flush to every stream would take (as measured per stream, from
 * busyBatchMs up to maxBatchMs), at most maxStormMs from its first change. A 10,000-node churn wave (500
 * logouts, 500 joins over 1.3-2 s) then goes out in one flush to every stayer: flushed on a fixed hold it went
 * out in two or three, 17,400-19,000 frames instead of 11,000, and the joins, waiting behind those flushes, got
 * in by 3.2-4.3 s instead of 1.3-2.0 s (bench-results/profiles.md, session 18).
 */
const stormChanges = 32;
/** A storm is over once no change came for this long: the joins of a wave arrive a few milliseconds apart. */
const stormGapMs = 50;
/** The longest a storm is held: what a change may wait while a burst goes on, not counting its flush. */
const maxStormMs = 2000;
/** Flushes that looked at this many streams or more tell what a flush costs per stream (fewer are all overhead). */
const costSampleStreams = 100;

/**
 * Sessions that may see more peers than this are not in the reverse index: with allow-all every session sees
 * every node, and a Set entry per session per peer made the server's memory quadratic (5,000 allow-all nodes
 * held 25 million entries). A flush looks the changed ids up in their sorted views instead.
 */
const wideViewPeers = 256;

/**
 * Peers per shared chunk of a full map: the peers of one chunk a viewer sees are compressed together once and
 * that zstd frame is copied into every full map that lists the same peers at the same versions (so a chunk
 * that straddles two policy groups is still shared within each). Large chunks compress better; but the chunk
 * holding the viewer leaves the viewer out, so it is split in quarters, and only the quarter holding the
 * viewer is compressed for it alone. At 10,000 grouped nodes this took a restart's full maps from 3.9 to 3.0 s
 * of CPU (in process), for 15 % more bytes than chunks of 64 compressed per viewer.
 */
const defaultChunkPeers = 64;
/** SrcIPs this long (JSON characters) or longer go as shared parts of the filters that carry them. */
const sharedSrcMin = 256;
/** Distinct visible subsets of one chunk kept compressed (one per group of viewers that sees part of it). */
const chunkVariants = 4;

export interface MapperDeps extends NetmapContext {
  readonly policy: PolicyView;
  readonly frames: FrameEncoder;
  /** Peers per shared full-map chunk (tests use small ones). */
  readonly chunkPeers?: number;
  /** SrcIPs this long or longer are shared parts of filters (default sharedSrcMin; tests use 0). */
  readonly sharedSrcMin?: number;
  /** A flush yields after this many milliseconds of work (default sliceMs; tests use 0: after every stream). */
  readonly sliceMs?: number;
  /** A storm ends after this quiet gap, and is held this long at most (defaults stormGapMs, maxStormMs). */
  readonly storm?: { readonly gapMs: number; readonly maxMs: number };
  /** Views with more peers than this skip the reverse index (default wideViewPeers; tests use 0). */
  readonly wideViewPeers?: number;
  readonly primary: PrimaryRoutes;
  /** Seconds from the first change of a batch to the last stream written with it. */
  readonly onFanout?: (seconds: number) => void;
}

export function createMapper(deps: MapperDeps) {
  const t = deps.tailnet;
  const sessions = new Map<number, SessionState>();
  /** Peer id -> the sessions of narrow views allowed to see it: who must hear about a change to that node. */
  const watchers = new Map<number, Set<SessionState>>();
  /** Sessions whose view has more than wideViewPeers peers. */
  const wide = new Set<SessionState>();
  const peerCache = new Map<number, PeerEntry>();
  let lastVersion = 0;
  const dirty = new Set<number>();
  const jsonOfView = new WeakMap<NodeView, { filter: Filter; ssh: string }>();
  /** JSON of values many views share by identity (SrcIPs, SSH policies, the DERP map). */
  const jsonOfValue = new WeakMap<object, string>();
  const shared = createSharedParts(deps.frames);
  const srcPieces = new WeakMap<readonly string[], Piece>();
  const filters = new WeakMap<readonly FilterRule[], Filter>();
  let pending: Change[] = [];
  let opened = 0;
  const sliceFor = deps.sliceMs ?? sliceMs;
  let timer: NodeJS.Timeout | undefined;
  let lastFlushMs = 0;
  /** When the last two flushes ended, older first. */
  let flushEnds: [number, number] = [-Infinity, -Infinity];
  /** When the oldest and the newest change still waiting for a flush were published. */
  let firstPendingAt = 0;
  let lastPendingAt = 0;
  const storm = deps.storm ?? { gapMs: stormGapMs, maxMs: maxStormMs };

  const sharedJson = (value: unknown): string | undefined => {
    if (typeof value !== 'object' || value === null) return JSON.stringify(value);
    let j = jsonOfValue.get(value);
    if (j === undefined) jsonOfValue.set(value, (j = JSON.stringify(value)));
    return j;
  };
  /**
   * A rule's SrcIPs, one array shared by the filters of every node the rule reaches and usually most of their
   * text: a long one is compressed once, a shared part of each filter that carries it.
   */
  const srcPiece = (ips: readonly string[]): Piece => {
    let p = srcPieces.get(ips);
    if (p === undefined) {
      const json = sharedJson(ips)!;
      srcPieces.set(ips, (p = json.length < (deps.sharedSrcMin ?? sharedSrcMin) ? json : shared.part(json)));
    }
    return p;
  };
  /** A packet filter in pieces (a node's filter is its own: its addresses are in DstPorts), and their key. */
  const filterOf = (rules: readonly FilterRule[]): Filter => {
    let f = filters.get(rules);
    if (f) return f;
    const pieces: Piece[] = ['['];
    rules.forEach((r, i) => {
      let separator = i ? ',{' : '{';
      for (const [k, v] of Object.entries(r)) {
        if (v === undefined) continue;
        appendPiece(pieces, `${separator}"${k}":`);
        // DstPorts is usually a list the compiles keep for the node (rules.ts dstPorts): its JSON is kept with it.
        appendPiece(pieces, k === 'SrcIPs' ? srcPiece(v as string[]) : k === 'DstPorts' ? sharedJson(v)! : JSON.stringify(v));
        separator = ',';
      }
      appendPiece(pieces, separator === ',' ? '}' : `${separator}}`);
    });
    appendPiece(pieces, ']');
    filters.set(rules, (f = pieces));
    return f;
  };
  const viewJson = (v: NodeView) => {
    let j = jsonOfView.get(v);
    if (!j) jsonOfView.set(v, (j = { filter: filterOf(v.packetFilter), ssh: JSON.stringify(v.sshPolicy) }));
    return j;
  };

  /** The time at the start of the current flush or stream opening: a map is built as of one instant. */
  let now = Date.now();
  /** The current wire form of a peer, recomputed only after it changed (or its key expired meanwhile). */
  const peer = (id: number): PeerEntry | undefined => {
    const old = peerCache.get(id);
    if (old && !dirty.has(id) && (old.wire.Expired || old.expiresAt > now)) return old;
    const node = t.nodes.find(id);
    if (!node) return undefined;
    dirty.delete(id);
    const wire = wireNode(deps, node);
    const json = JSON.stringify(wire);
    if (old && old.json === json) return old;
    const expiresAt = node.expiry ? Date.parse(node.expiry) : Infinity;
    const entry: PeerEntry = { wire, json, version: ++lastVersion, previous: old?.version, expiresAt, patch: old && patchBetween(old.wire, wire) };
    peerCache.set(id, entry);
    return entry;
  };

  const chunkPeers = deps.chunkPeers ?? defaultChunkPeers;
  const ownChunkPeers = Math.max(1, Math.floor(chunkPeers / 4));
  /** Chunk number -> compressed JSON of visible subsets of its peers (joined by commas), newest first. */
  const chunks = new Map<number, { ids: number[]; versions: number[]; body: Buffer }[]>();
  /** The shared compressed form of these peers of chunk k (built on a miss, the oldest variant dropped). */
  const sharedChunk = (k: number, entries: readonly PeerEntry[]): Buffer => {
    const ids = entries.map((e) => e.wire.ID);
    const versions = entries.map((e) => e.version);
    const variants = chunks.get(k) ?? [];
    const hit = variants.find((c) => sameIds(c.ids, ids) && sameIds(c.versions, versions));
    if (hit) return hit.body;
    const body = deps.frames.compress(entries.map((e) => e.json).join(','));
    // A variant of the same peers at older versions is of no more use.
    const kept = variants.filter((c) => !sameIds(c.ids, ids)).slice(0, chunkVariants - 1);
    chunks.set(k, [{ ids, versions, body }, ...kept]);
    return body;
  };

  /**
   * A full map as a frame of several zstd frames: the per-viewer text (head, separators, the viewer's own
   * chunk, which leaves it out) and between its pieces the shared parts of its packet filter and the shared
   * chunks of the peers it sees.
   */
  const encodeFull = (parts: FullMapParts, filter: Filter, entries: readonly PeerEntry[], selfId: number): Buffer => {
    const pieces: Piece[] = [parts.open];
    for (const p of filter) appendPiece(pieces, p);
    appendPiece(pieces, parts.afterFilter);
    const own = Math.floor(selfId / chunkPeers);
    const small = Math.floor(selfId / ownChunkPeers);
    // Large chunks are numbered from 0, the small ones inside the viewer's own large chunk from -1 down.
    const chunkOf = (i: number) => {
      const id = entries[i]!.wire.ID;
      return Math.floor(id / chunkPeers) === own ? -1 - Math.floor(id / ownChunkPeers) : Math.floor(id / chunkPeers);
    };
    for (let i = 0; i < entries.length; ) {
      const k = chunkOf(i);
      let j = i;
      while (j < entries.length && chunkOf(j) === k) j++;
      const group = entries.slice(i, j);
      if (i > 0) appendPiece(pieces, ',');
      appendPiece(pieces, k === -1 - small ? group.map((e) => e.json).join(',') : sharedChunk(k, group));
      i = j;
    }
    appendPiece(pieces, parts.close);
    return deps.frames.frame(shared.bodies(pieces));
  };

  const markDirty = (c: Change) => {
    if (c.kind === 'node-added' || c.kind === 'node-updated') dirty.add(c.node.id);
    if (c.kind === 'node-removed') peerCache.delete(c.node.id);
    if (c.kind === 'dns-changed' || c.kind === 'user-updated') for (const id of peerCache.keys()) dirty.add(id);
  };

  deps.primary.update(t.nodes.list(), t.nodes.isOnline);
  const unsubscribe = t.subscribe((c) => {
    markDirty(c);
    lastPendingAt = performance.now();
    if (pending.length === 0) firstPendingAt = lastPendingAt;
    pending.push(c);
    schedule();
  });

  /** Arms the flush of what is pending, unless it is armed or a flush is still writing (it arms it when done). */
  function schedule(): void {
    if (timer || flushing || stopped || pending.length === 0) return;
    const at = performance.now();
    // After a quiet spell a lone change goes out at once, however long the last flush took: held three times
    // that long, a join reached 1,000 allow-all peers in 271-531 ms after a mass connect's last flush.
    const quiet = at - flushEnds[1] > busyWindowMs;
    const busy = at - flushEnds[0] < busyWindowMs;
    timer = setTimeout(flush, quiet ? batchMs : Math.min(maxBatchMs, Math.max(busy ? busyBatchMs : batchMs, flushCostRatio * lastFlushMs)));
  }

  /** How much longer a storm's batch is held (stormChanges): until it is over, or has waited long enough. */
  function stormHold(): number {
    const at = performance.now();
    const held = at - firstPendingAt;
    const minimum = Math.min(maxBatchMs, Math.max(busyBatchMs, flushCostRatio * streamMs * sessions.size));
    const hold = Math.max(minimum - held, storm.gapMs - (at - lastPendingAt));
    return Math.min(hold, storm.maxMs - held);
  }
  /** What a flush cost per stream it looked at, as of the last one that looked at costSampleStreams or more. */
  let streamMs = 0;

  /** A flush is writing to its streams, slice by slice. */
  let flushing = false;
  let stopped = false;

  function flush(): void {
    timer = undefined;
    const hold = pending.length >= stormChanges ? stormHold() : 0;
    if (hold > 0) {
      timer = setTimeout(flush, hold);
      return;
    }
    flushing = true;
    try {
      flushBatch((busyMs, visited) => {
        if (visited >= costSampleStreams) streamMs = busyMs / visited;
        flushing = false;
        flushEnds = [flushEnds[1], performance.now()];
        lastFlushMs = busyMs;
        schedule();
      });
    } catch (err) {
      // Thrown before its first slice: the next flush must not be held back for good.
      flushing = false;
      throw err;
    }
  }

  /**
   * Works out and writes the batch's deltas in slices of about sliceMs, yielding to the event loop between
   * them; `done` is told the slices' work in all and the streams they looked at.
   */
  function flushBatch(done: (busyMs: number, visited: number) => void): void {
    const since = firstPendingAt;
    const batch = pending;
    pending = [];
    const changed = new Set<number>();
    let dnsChanged = false;
    for (const c of batch) {
      if (c.kind === 'node-added' || c.kind === 'node-updated' || c.kind === 'node-removed') changed.add(c.node.id);
      if (c.kind === 'dns-changed') dnsChanged = true;
      if (c.kind === 'dns-changed' || c.kind === 'user-updated') for (const id of peerCache.keys()) changed.add(id);
    }
    // Primaries depend on routers only: a batch that touched none leaves them as they were.
    if (batch.some(touchesRouter)) {
      for (const id of deps.primary.update(t.nodes.list(), t.nodes.isOnline)) {
        changed.add(id);
        dirty.add(id);
      }
    }
    const affected = deps.policy.takeAffected();
    const watching = watchersOf(changed);
    const visit = affected === 'all' || dnsChanged ? sessions.values() : concerned(affected, changed, watching);
    // With allow-all most streams get the very same delta: each distinct one is compressed once per flush.
    const frames = new Map<string, Buffer>();
    now = Date.now();
    const controlTime: Member = ['ControlTime', JSON.stringify(new Date(now).toISOString())];
    const send = (s: SessionState, members: Member[]) => {
      const pieces: Piece[] = [];
      let separator = '{';
      for (const [name, value] of [...members, controlTime]) {
        if (value === undefined) continue;
        appendPiece(pieces, `${separator}"${name}":`);
        for (const p of typeof value === 'string' ? [value] : value) appendPiece(pieces, p);
        separator = ',';
      }
      appendPiece(pieces, '}');
      const key = shared.key(pieces);
      let frame = frames.get(key);
      if (!frame) frames.set(key, (frame = deps.frames.frame(shared.bodies(pieces))));
      s.session.send(frame);
    };
    /**
     * The peers a delta lists, by their versions (unique across peers and lifetimes): a group's streams mostly
     * get the same ones, but each its own filter, so they are a shared part rather than each message's text.
     */
    const peerLists = new Map<string, readonly Piece[]>();
    const peersChanged = (entries: readonly PeerEntry[]): readonly Piece[] => {
      const key = entries.map((e) => e.version).join(',');
      let pieces = peerLists.get(key);
      if (!pieces) peerLists.set(key, (pieces = [shared.part(`[${entries.map((e) => e.json).join(',')}]`, `peers:${key}`)]));
      return pieces;
    };
    let wrote = false;
    const streams = visit[Symbol.iterator]();
    let visited = 0;
    let busyMs = 0;
    const next = () => {
      const started = performance.now();
      // A throw ends the flush too, so the next one is not held back for good.
      let last = true;
      try {
        // A stream opened between slices may have compiled the policy again: a compile holds until the next one.
        const compiled = deps.policy.current();
        for (let r = streams.next(); !r.done; r = streams.next()) {
          const s = r.value;
          // Closed or replaced between slices: forgotten, and must stay out of the reverse index.
          if (sessions.get(s.session.nodeId) !== s) continue;
          visited++;
          wrote = update(s, compiled, changed, watching.get(s) ?? [], dnsChanged, { send, peersChanged }) || wrote;
          if (performance.now() - started >= sliceFor) {
            last = false;
            setImmediate(next);
            return;
          }
        }
        if (wrote) deps.onFanout?.((performance.now() - since) / 1000);
      } finally {
        busyMs += performance.now() - started;
        if (last) done(busyMs, visited);
      }
    };
    next();
  }

  /**
   * The changed nodes each session is allowed to see, from the reverse index: a session looks at these, not at
   * every change of the batch (a churn wave changes hundreds of nodes, each session sees a few of them).
   */
  function watchersOf(changed: ReadonlySet<number>): Map<SessionState, number[]> {
    const out = new Map<SessionState, number[]>();
    for (const id of changed) {
      for (const s of watchers.get(id) ?? []) {
        const ids = out.get(s);
        if (ids) ids.push(id);
        else out.set(s, [id]);
      }
    }
    for (const s of wide) {
      let ids: number[] | undefined;
      for (const id of changed) if (includesSorted(s.view.reach, id)) (ids ??= []).push(id);
      if (ids) out.set(s, ids);
    }
    return out;
  }

  /** Sessions whose view may have changed, of a changed node, or watching one: nobody else has news. */
  function concerned(affected: ReadonlySet<number>, changed: ReadonlySet<number>, watching: ReadonlyMap<SessionState, number[]>): Set<SessionState> {
    const out = new Set<SessionState>(watching.keys());
    const own = (id: number) => {
      const s = sessions.get(id);
      if (s) out.add(s);
    };
    for (const id of affected) own(id);
    for (const id of changed) own(id);
    return out;
  }

  /** Adds a narrow session to the reverse index of these peers, or removes it. */
  function index(s: SessionState, ids: readonly number[]): void {
    for (const id of ids) {
      let w = watchers.get(id);
      if (!w) watchers.set(id, (w = new Set()));
      w.add(s);
    }
  }
  function unindex(s: SessionState, ids: readonly number[]): void {
    for (const id of ids) {
      const w = watchers.get(id);
      // Deleted nodes' ids must not pile up as empty entries.
      if (w?.delete(s) && w.size === 0) watchers.delete(id);
    }
  }

  /**
   * Moves a session from the peers of its old view to those of `next`; `diff` is what entered and left between
   * them (moveView's walk; a new session only enters, a closed one only leaves).
   */
  function watch(s: SessionState, old: readonly number[], next: readonly number[], diff: ViewDiff): void {
    const wasWide = wide.has(s);
    const isWide = next.length > (deps.wideViewPeers ?? wideViewPeers);
    if (wasWide && isWide) return;
    if (!wasWide && !isWide) {
      unindex(s, diff.removed);
      index(s, diff.added);
      return;
    }
    if (wasWide) wide.delete(s);
    else unindex(s, old);
    if (isWide) wide.add(s);
    else index(s, next);
  }

  function forget(s: SessionState): void {
    if (sessions.get(s.session.nodeId) === s) sessions.delete(s.session.nodeId);
    watch(s, s.view.reach, [], { added: [], removed: s.view.reach });
  }

  /** Sends a session what it must learn from this batch; true when something was written to it. */
  function update(
    s: SessionState,
    compiled: CompiledPolicy,
    changed: Set<number>,
    watched: readonly number[],
    dnsChanged: boolean,
    out: { send(s: SessionState, members: Member[]): void; peersChanged(entries: readonly PeerEntry[]): readonly Piece[] },
  ): boolean {
    const self = t.nodes.find(s.session.nodeId);
    if (!self) return endDeleted(s);
    const view = compiled.forNode(self.id);
    const recheck = s.view !== view;
    // The self node depends on the view only through its capabilities: a recompile (every policy change makes
    // one for every node) that left them alone need not encode the node again for each stream.
    const capsMoved = recheck && s.view.capMap !== view.capMap && JSON.stringify(s.view.capMap) !== JSON.stringify(view.capMap);
    // Only peers that entered or left the view, or changed themselves, can need news: with allow-all every
    // view moves on every join, and rescanning whole peer lists would make each flush O(N²). Of the changed
    // nodes, only those the session was allowed to see (`watched`) can be in its map.
    let candidates: Iterable<number> = watched;
    const removed: number[] = [];
    if (recheck && !sameIds(s.view.reach, view.reach)) {
      const moved = moveView(s.view.reach, s.sent, view.reach);
      watch(s, s.view.reach, view.reach, moved);
      // Peers that left the view and had been sent go as removals; the others keep their versions.
      s.sent = moved.sent;
      removed.push(...moved.sentAway);
      candidates = new Set([...watched, ...moved.added]);
    }
    s.view = view;
    const patches: PeerPatch[] = [];
    const changedPeers: PeerEntry[] = [];
    const profiles: UserProfile[] = [];
    for (const id of candidates) {
      if (id === self.id) continue;
      const at = indexOfSorted(view.reach, id);
      if (at < 0) continue;
      const entry = peer(id);
      const had = s.sent[at]!;
      if (!entry || !entry.wire.DiscoKey) {
        if (had) removed.push(id);
        s.sent[at] = 0;
        continue;
      }
      if (had === entry.version) continue;
      if (had && entry.patch && had === entry.previous) patches.push(entry.patch);
      else changedPeers.push(entry);
      s.sent[at] = entry.version;
      const node = t.nodes.find(id)!;
      const profile = profileOf(t, node);
      if (!s.profiles.has(profile.ID)) {
        s.profiles.add(profile.ID);
        profiles.push(profile);
      }
    }
    const members: Member[] = [];
    const list = (key: string, items: readonly unknown[]) => {
      if (items.length) members.push([key, JSON.stringify(items)]);
    };
    if (changedPeers.length) members.push(['PeersChanged', out.peersChanged(changedPeers)]);
    list('PeersChangedPatch', patches);
    list('PeersRemoved', removed);
    list('UserProfiles', profiles);
    const { filter, ssh } = viewJson(view);
    if (!shared.same(filter, s.filter)) members.push(['PacketFilter', filter]);
    s.filter = filter;
    if (ssh !== s.sshJson) {
      members.push(['SSHPolicy', ssh]);
      s.sshJson = ssh;
    }
    if (capsMoved || changed.has(self.id) || dnsChanged) {
      const json = JSON.stringify(wireNode(deps, self, view));
      if (json !== s.selfJson) {
        members.push(['Node', json]);
        s.selfJson = json;
      }
    }
    if (dnsChanged || changed.has(self.id)) {
      const dns = { DNSConfig: nodeDnsConfig(deps, self), Domain: t.dns().baseDomain };
      const json = JSON.stringify(dns);
      if (json !== s.dnsJson) {
        members.push(['DNSConfig', JSON.stringify(dns.DNSConfig)], ['Domain', JSON.stringify(dns.Domain)]);
        s.dnsJson = json;
      }
    }
    if (members.length === 0) return false;
    out.send(s, members);
    return true;
  }

  /** A deleted node learns its key is no longer valid, so the client asks its user to log in again. */
  function endDeleted(s: SessionState): boolean {
    forget(s);
    const wire = JSON.parse(s.selfJson || '{}') as WireNode;
    if (wire.ID) s.session.send(deps.frames.encode({ Node: { ...wire, KeyExpiry: new Date(Date.now() - 1000).toISOString(), Expired: true } }));
    s.session.end();
    return wire.ID !== undefined;
  }

  return {
    /**
     * Registers a stream and returns its first, full map as a frame (undefined if the node is gone by then); a
     * newer stream of the same node replaces the old. Waits for the policy to settle, so a burst of new streams
     * (a mass connect, every client after a restart) shares one compile and the peers' cached JSON.
     */
    async open(session: Session): Promise<Buffer | undefined> {
      opened++;
      await deps.policy.settle();
      const compiled = deps.policy.current();
      const self = t.nodes.find(session.nodeId);
      if (!self) return undefined;
      const replaced = sessions.get(session.nodeId);
      if (replaced) {
        forget(replaced);
        replaced.session.end();
      }
      const view = compiled.forNode(self.id);
      now = Date.now();
      const map = fullMapParts(deps, self, view, sharedJson, new Date(now).toISOString());
      const entries = map.peers.map((p) => peer(p.id)!);
      const { head } = map;
      const { filter, ssh } = viewJson(view);
      const state: SessionState = {
        session,
        view,
        sent: sentVersions(view.reach, entries),
        profiles: new Set(head.UserProfiles!.map((p) => p.ID)),
        selfJson: JSON.stringify(head.Node),
        filter,
        sshJson: ssh,
        dnsJson: JSON.stringify({ DNSConfig: head.DNSConfig, Domain: head.Domain }),
      };
      watch(state, [], view.reach, { added: view.reach, removed: [] });
      sessions.set(session.nodeId, state);
      return encodeFull(map, filter, entries, self.id);
    },
    /** The full map of a node as a frame, without opening a stream (a one-shot fetch); undefined if the node is gone. */
    async snapshot(nodeId: number): Promise<Buffer | undefined> {
      await deps.policy.settle();
      const compiled = deps.policy.current();
      const self = t.nodes.find(nodeId);
      if (!self) return undefined;
      now = Date.now();
      const view = compiled.forNode(self.id);
      const map = fullMapParts(deps, self, view, sharedJson, new Date(now).toISOString());
      return encodeFull(map, viewJson(view).filter, map.peers.map((p) => peer(p.id)!), self.id);
    },
    /** Forgets a stream that ended, unless a newer one already replaced it. */
    close(session: Session): void {
      const s = sessions.get(session.nodeId);
      if (s?.session === session) forget(s);
    },
    has: (nodeId: number) => sessions.has(nodeId),
    count: () => sessions.size,
    /** Sends the current DERP map to every stream (a replica, and so its relay region, came or went). */
    derpMapChanged(): void {
      const frame = deps.frames.encode({ DERPMap: deps.derpMap(), ControlTime: new Date().toISOString() });
      for (const s of sessions.values()) s.session.send(frame);
    },
    /** Streams opened since start: tests use it to prove changes arrive without reconnects. */
    opened: () => opened,
    stop(): void {
      stopped = true;
      unsubscribe();
      if (timer) clearTimeout(timer);
      for (const s of sessions.values()) s.session.end();
      sessions.clear();
      watchers.clear();
      wide.clear();
    },
  };
}

export type Mapper = ReturnType<typeof createMapper>;

/** Whether a change involves a node that serves routes (before or after it), so primaries may move. */
function touchesRouter(c: Change): boolean {
  if (c.kind !== 'node-added' && c.kind !== 'node-updated' && c.kind !== 'node-removed') return false;
  return servingRoutes(c.node).length > 0 || (c.kind === 'node-updated' && servingRoutes(c.before).length > 0);
}

/** The ids that entered and left a session's sorted view. */
interface ViewDiff {
  readonly added: readonly number[];
  readonly removed: readonly number[];
}

/** Where a sorted id list holds `id` (binary search), -1 if it does not. */
function indexOfSorted(ids: readonly number[], id: number): number {
  let lo = 0;
  let hi = ids.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = ids[mid]!;
    if (v === id) return mid;
    if (v < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

const includesSorted = (ids: readonly number[], id: number) => indexOfSorted(ids, id) >= 0;

/** A new stream's sent versions: the full map's peers (sorted by id, each in the view) at their view positions. */
function sentVersions(view: readonly number[], entries: readonly PeerEntry[]): Float64Array {
  const sent = new Float64Array(view.length);
  let i = 0;
  for (const e of entries) {
    while (view[i]! < e.wire.ID) i++;
    sent[i] = e.version;
  }
  return sent;
}

/**
 * A session's view moving from `old` to `next` (both sorted), in one walk: the ids added and removed, the sent
 * versions moved to their new positions, and the ids that left with a version sent (they go to the client as removals).
 */
function moveView(old: readonly number[], sent: Float64Array, next: readonly number[]) {
  const out = { added: [] as number[], removed: [] as number[], sentAway: [] as number[], sent: new Float64Array(next.length) };
  let i = 0;
  let j = 0;
  while (i < old.length || j < next.length) {
    if (j >= next.length || (i < old.length && old[i]! < next[j]!)) {
      if (sent[i]) out.sentAway.push(old[i]!);
      out.removed.push(old[i++]!);
    } else if (i >= old.length || next[j]! < old[i]!) out.added.push(next[j++]!);
    else out.sent[j++] = sent[i++]!;
  }
  return out;
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const patchable = ['Endpoints', 'DiscoKey', 'Key', 'HomeDERP', 'Online', 'LastSeen', 'KeyExpiry'] as const;

/** A PeersChangedPatch from a to b when only patchable fields differ; undefined when a full node is needed. */
function patchBetween(a: WireNode, b: WireNode): PeerPatch | undefined {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof WireNode>;
  const patch: PeerPatch = { NodeID: b.ID };
  for (const k of keys) {
    if (JSON.stringify(a[k]) === JSON.stringify(b[k])) continue;
    if (!(patchable as readonly string[]).includes(k)) return undefined;
    // A field that disappeared cannot be expressed as a patch (LastSeen going away is harmless to keep).
    if (b[k] === undefined) {
      if (k === 'LastSeen') continue;
      return undefined;
    }
    if (k === 'HomeDERP') patch.DERPRegion = b.HomeDERP;
    else (patch as unknown as Record<string, unknown>)[k] = b[k];
  }
  return patch;
}
