/**
 * The bench's simulated fleet: a driver for gofleet (./gofleet), the Go load generator whose nodes speak the
 * control protocol through tailscale's own client stack. Commands go to it as JSON lines on stdin, replies come
 * back matched by `seq`. What a scenario waits for (a peer added or removed, an endpoint patch, a new packet
 * filter) is declared as a watch and checked in gofleet as frames arrive, so no frame crosses the pipe.
 * Times are Unix milliseconds: `now()` here, `time.Now()` there, the same clock.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { buildGoProgram } from '../../peers/go-build.ts';
import { sampleProc } from '../proc.ts';

/** Where nodes dial: the server's URL and its Noise key (`mkey:…`); the port changes when the bench restarts it. */
export interface Target {
  url: string;
  serverKey: string;
}

/** A node of the fleet; `index` places it in the policy's blocks and picks its source address. */
export interface FleetNode {
  readonly h: number;
  readonly index: number;
  readonly name: string;
  readonly nodeKey: string;
  /** Its node id, from its first map. */
  id: number;
  /** When its latest stream's first frame (the full map) arrived, and how long after the map request. */
  firstMapAt: number;
  firstMapMs: number;
}

/** A node's state in gofleet: its netmap's peer count and its first-map figures. */
export interface NodeStats {
  h: number;
  id: number;
  peers: number;
  firstMapMs: number;
  firstMapAt: number;
}

/** Every frame since the fleet started, those of nodes that left included; deltas exclude first maps and keep-alives. */
export interface Totals {
  frames: number;
  deltas: number;
  bytes: number;
  /** Streams the server ended that a node re-opened, as tailscaled would. */
  repolls: number;
  /** Connection steps that failed and were retried after a back-off. */
  retries: number;
}

/** What every node of `nodes` must see from now on. */
export interface WatchGroup {
  nodes: readonly FleetNode[];
  /** Peers that join, by node key. */
  added?: string[];
  /** Peers that leave: their id, and the key they had (a peer sent under that id with another key replaced them). */
  removed?: { id: number; key: string }[];
  /** A peer whose endpoints change: a patch with endpoints, or the peer re-sent. */
  patch?: { id: number; key: string };
  /** A new packet filter. */
  filter?: boolean;
}

/** One watching node: of its `n` conditions, how many arrived, the last arrival, and how many after a deadline. */
export interface Arrival {
  h: number;
  n: number;
  arrived: number;
  last: number;
  after: number;
}

export const now = () => performance.timeOrigin + performance.now();

export interface Fleet {
  /** Nodes that joined and have not left. */
  readonly nodes: FleetNode[];
  setTarget(t: Target): Promise<void>;
  /** Registers a new node with a pre-auth key and opens its map stream; resolves with its first map. */
  join(index: number, authKey: string, name?: string): Promise<FleetNode>;
  /** A new node's keys, before it dials (to watch for it); start() joins it. */
  prepare(index: number, name?: string): Promise<FleetNode>;
  start(node: FleetNode, authKey: string): Promise<FleetNode>;
  /** Re-dials a node (after a restart) and reopens its stream. */
  reconnect(node: FleetNode): Promise<void>;
  /** `tailscale logout` (an ephemeral node is deleted), then the node leaves the fleet. */
  leave(node: FleetNode): Promise<void>;
  /** The lite map request a node sends when its endpoints change. */
  liteUpdate(node: FleetNode): Promise<void>;
  watch(groups: WatchGroup[]): Promise<Watch>;
  stats(): Promise<NodeStats[]>;
  totals(): Promise<Totals>;
  /** CPU seconds gofleet used so far. */
  cpuSec(): number;
  close(): Promise<void>;
}

export interface Watch {
  /** Resolves when every condition arrived at every node (true) or at the deadline (false). */
  wait(until: number): Promise<boolean>;
  arrivals(after?: number): Promise<Arrival[]>;
  /** Stops counting what was wanted about these peers: joiners (by key) that never got in, leavers (by id) that never got out. */
  drop(peers: { keys?: string[]; ids?: number[] }): Promise<void>;
  close(): Promise<void>;
}

type Reply = Record<string, unknown> & { seq: number; error?: string };

/** X25519 without crypto/ecdh's unused public-key derivation: half of every client DH (gofleet/curve25519/curve25519.go). */
const x25519 = { module: 'golang.org/x/crypto', file: 'curve25519/curve25519.go', with: 'curve25519/curve25519.go' };

export const gofleetDir = new URL('./gofleet', import.meta.url).pathname;
/** Builds gofleet (once: the binary is cached until a source changes) and returns its path. */
export const buildFleet = () => buildGoProgram(gofleetDir, 'gofleet', { patches: [x25519] });

export async function startFleet(target: Target, opts: { concurrency: number }): Promise<Fleet> {
  const binary = await buildFleet();
  const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  let seq = 0;
  let exited: Error | undefined;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const r = JSON.parse(line) as Reply;
    const p = pending.get(r.seq);
    pending.delete(r.seq);
    if (r.error) p?.reject(new Error(r.error));
    else p?.resolve(r);
  });
  child.on('exit', (code) => {
    exited = new Error(`gofleet exited (${code})`);
    for (const p of pending.values()) p.reject(exited);
    pending.clear();
  });
  const send = <T = Reply>(op: string, args: object = {}): Promise<T> => {
    if (exited) return Promise.reject(exited);
    const s = ++seq;
    return new Promise<T>((resolve, reject) => {
      pending.set(s, { resolve: resolve as (r: Reply) => void, reject });
      child.stdin.write(JSON.stringify({ seq: s, op, ...args }) + '\n');
    });
  };

  let handle = 0;
  const nodes: FleetNode[] = [];
  const drop = (node: FleetNode) => {
    const i = nodes.indexOf(node);
    if (i >= 0) nodes.splice(i, 1);
  };
  let watches = 0;

  await send('target', { ...target, concurrency: opts.concurrency });
  const fleet: Fleet = {
    nodes,
    setTarget: (t) => send('target', { ...t }).then(() => undefined),
    async prepare(index, name = `bench-${index}`) {
      const h = ++handle;
      const { nodeKey } = await send<{ nodeKey: string }>('create', { h, index, name });
      return { h, index, name, nodeKey, id: 0, firstMapAt: 0, firstMapMs: 0 };
    },
    async start(node, authKey) {
      const r = await send<NodeStats>('join', { h: node.h, authKey });
      Object.assign(node, { id: r.id, firstMapAt: r.firstMapAt, firstMapMs: r.firstMapMs });
      nodes.push(node);
      return node;
    },
    join: async (index, authKey, name) => fleet.start(await fleet.prepare(index, name), authKey),
    async reconnect(node) {
      const r = await send<NodeStats>('reconnect', { h: node.h });
      node.firstMapAt = r.firstMapAt;
      node.firstMapMs = r.firstMapMs;
    },
    async leave(node) {
      drop(node);
      await send('leave', { h: node.h });
    },
    liteUpdate: (node) => send('lite', { h: node.h }).then(() => undefined),
    async watch(groups) {
      const token = `w${++watches}`;
      await send('watch', { token, groups: groups.map(({ nodes: members, ...g }) => ({ ...g, hs: members.map((x) => x.h) })) });
      return {
        wait: (until) => send<{ complete: boolean }>('wait', { token, until }).then((r) => r.complete),
        arrivals: (after = 0) => send<{ nodes: Arrival[] }>('arrivals', { token, after }).then((r) => r.nodes),
        drop: (peers) => send('drop', { token, ...peers }).then(() => undefined),
        close: () => send('unwatch', { token }).then(() => undefined),
      };
    },
    stats: () => send<{ nodes: NodeStats[] }>('stats').then((r) => r.nodes),
    totals: () => send<Totals>('totals'),
    cpuSec: () => (exited ? 0 : sampleProc(child.pid!).cpuSec),
    async close() {
      if (exited) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.stdin.end();
      await gone;
    },
  };
  return fleet;
}
