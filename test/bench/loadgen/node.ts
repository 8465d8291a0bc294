/**
 * One simulated node speaking the real protocol: its own machine key, Noise connection and HTTP/2 session;
 * registers with a pre-auth key, holds a streaming map poll whose zstd frames it decodes, and sends lite updates.
 */
import { randomBytes } from 'node:crypto';
import type http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { createFrameDecoder } from '../../../src/control/frames.ts';
import { generateKeyPair, type KeyPair } from '../../../src/control/noise/primitives.ts';
import type { MapRequest, MapResponse, RegisterResponse } from '../../../src/control/wire.ts';
import { dialNoise, h2Request, h2Session, type NoiseClient } from '../../control/noise-client.ts';

/** Capability version the simulated clients claim (a 2025 tailscaled). */
export const clientVersion = 130;

/** Where the server is: its port changes when the bench restarts it. */
export interface Target {
  port: number;
  serverPublic: Uint8Array;
}

/** A decoded map frame and when its bytes arrived (performance.now()). */
export interface Frame {
  readonly at: number;
  readonly map: MapResponse;
}

export type FrameListener = (f: Frame) => void;

/** Per-node measurements; times are performance.now() milliseconds. */
export interface NodeMetrics {
  registerMs?: number;
  /** From sending the streaming map request to its first frame. */
  firstMapMs?: number;
  firstMapAt?: number;
  firstMapPeers?: number;
  frames: number;
  bytes: number;
  /** Non-keep-alive frames after the first map (a count: keeping each one made the fleet's heap grow all run). */
  deltas: number;
  /** Streams the server ended that the node re-opened (and got a first frame on), as tailscaled would. */
  repolls: number;
}

/** tailscaled's map routine backs off 10 ms × n² after n failed polls in a row (util/backoff), then retries. */
const repollDelayMs = (n: number) => 10 * n * n;
const maxRepolls = 8;

const hex32 = () => randomBytes(32).toString('hex');

function hostinfo(name: string) {
  return {
    Hostname: name,
    OS: 'linux',
    OSVersion: 'Debian 12.8',
    IPNVersion: '1.80.0-bench',
    GoArch: 'amd64',
    GoVersion: 'go1.23.4',
    BackendLogID: hex32(),
    NetInfo: { PreferredDERP: 999, WorkingUDP: true, HavePortMap: false },
  };
}

function endpoints(index: number, generation: number): string[] {
  const a = index + 1;
  return [`192.0.2.${a & 255}:${41641 + generation}`, `198.51.${(a >> 8) & 255}.${a & 255}:${41641 + generation}`, `[2001:db8::${a.toString(16)}]:41641`];
}

/**
 * The loopback address a node dials from: a fleet comes from many addresses, and the server caps connections per
 * source (guard/limits.ts, 256), so 100 nodes share each of 127.0.1.0/24's addresses (Linux routes all of 127/8).
 */
const sourceAddress = (index: number) => `127.0.1.${1 + (Math.floor(index / 100) % 254)}`;

export function createSimNode(index: number, name = `bench-${index}`) {
  const machine: KeyPair = generateKeyPair();
  const nodeKey = `nodekey:${hex32()}`;
  const discoKey = `discokey:${hex32()}`;
  const info = hostinfo(name);
  const metrics: NodeMetrics = { frames: 0, bytes: 0, deltas: 0, repolls: 0 };
  const listeners = new Set<FrameListener>();
  /** The peer ids this node's netmap holds now, to check the policy gave each node the peers it should. */
  const peers = new Set<number>();
  let client: NoiseClient | undefined;
  let session: http2.ClientHttp2Session | undefined;
  let stream: http2.ClientHttp2Stream | undefined;
  let generation = 0;
  let nodeId: number | undefined;

  const mapRequest = (stream: boolean): MapRequest => ({
    Version: clientVersion,
    Compress: 'zstd',
    KeepAlive: stream,
    NodeKey: nodeKey,
    DiscoKey: discoKey,
    Stream: stream,
    OmitPeers: !stream,
    Hostinfo: info,
    Endpoints: endpoints(index, generation),
    EndpointTypes: [1, 2, 1],
  });

  const trackPeers = (map: MapResponse) => {
    if (map.Peers) peers.clear();
    for (const p of map.Peers ?? []) peers.add(p.ID);
    for (const p of map.PeersChanged ?? []) peers.add(p.ID);
    for (const id of map.PeersRemoved ?? []) peers.delete(id);
  };

  /** `resolveFirst` is set for a stream's first frame; a re-poll's first frame counts as a delta, not a first map. */
  const onFrame = (map: MapResponse, at: number, resolveFirst: ((f: Frame) => void) | undefined, again: boolean) => {
    metrics.frames++;
    trackPeers(map);
    if (resolveFirst && !again) {
      metrics.firstMapAt = at;
      metrics.firstMapPeers = map.Peers?.length ?? 0;
      nodeId = map.Node?.ID;
    } else if (!map.KeepAlive) {
      metrics.deltas++;
    }
    resolveFirst?.({ at, map });
    for (const l of listeners) l({ at, map });
  };

  /**
   * Opens a streaming map poll and resolves with its first frame (the full map). When the server ends a stream
   * that had delivered frames, the node polls again on the same connection (`again`: first-map metrics stay).
   */
  const poll = (again: boolean): Promise<Frame> => {
    if (!again) metrics.firstMapAt = undefined;
    const decoder = createFrameDecoder();
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      const req = session!.request({ ':method': 'POST', ':path': '/machine/map', 'content-type': 'application/json' });
      stream = req;
      let first: ((f: Frame) => void) | undefined = (f) => {
        if (!again) metrics.firstMapMs = f.at - t0;
        resolve(f);
      };
      let refused = '';
      req.on('response', (h) => {
        if (h[':status'] !== 200) refused = `map ${name}: HTTP ${h[':status']}`;
      });
      req.on('data', (chunk: Buffer) => {
        // A refusal's body is a JSON error, not frames.
        if (refused) return reject(new Error(`${refused}: ${chunk.toString().slice(0, 200)}`));
        const at = performance.now();
        metrics.bytes += chunk.length;
        for (const map of decoder.push(chunk)) {
          onFrame(map as MapResponse, at, first, again);
          first = undefined;
        }
      });
      req.on('error', reject);
      req.on('close', () => {
        reject(new Error(refused || `map ${name}: stream closed before the first frame`));
        if (!first && stream === req) void repoll(session!);
      });
      req.end(JSON.stringify(mapRequest(true)));
    });
  };

  /** Re-polls with tailscaled's back-off until a stream works, the connection dies, or close()/connect() replace it. */
  const repoll = async (s: http2.ClientHttp2Session) => {
    for (let n = 1; n <= maxRepolls; n++) {
      await new Promise((r) => setTimeout(r, repollDelayMs(n)));
      if (session !== s || s.closed || s.destroyed) return;
      try {
        await poll(true);
        metrics.repolls++;
        return;
      } catch {
        // Try again after a longer pause, like tailscaled.
      }
    }
  };

  return {
    index,
    name,
    nodeKey,
    id: () => nodeId,
    metrics,
    peerCount: () => peers.size,
    streaming: () => stream !== undefined && !stream.closed,
    /** Dials the server with this node's machine key and opens the HTTP/2 session over Noise. */
    async connect(target: Target): Promise<void> {
      client = await dialNoise(target.port, target.serverPublic, { machine, version: clientVersion, localAddress: sourceAddress(index) });
      session = h2Session(client);
    },
    async register(authKey: string): Promise<void> {
      const t0 = performance.now();
      const body = { Version: clientVersion, NodeKey: nodeKey, Auth: { AuthKey: authKey }, Hostinfo: info, Expiry: '0001-01-01T00:00:00Z' };
      const res = await h2Request(session!, '/machine/register', JSON.stringify(body));
      const json = JSON.parse(res.body.toString() || '{}') as RegisterResponse;
      if (res.status !== 200 || json.Error || !json.MachineAuthorized) throw new Error(`register ${name}: HTTP ${res.status} ${res.body}`);
      metrics.registerMs = performance.now() - t0;
    },
    /** Opens the streaming map poll and resolves with its first frame (the full map). */
    openStream: (): Promise<Frame> => poll(false),
    /** `tailscale logout`: a register request whose expiry is in the past; the server deletes an ephemeral node. */
    async logout(): Promise<void> {
      const body = { Version: clientVersion, NodeKey: nodeKey, Hostinfo: info, Expiry: new Date(123_000).toISOString() };
      const res = await h2Request(session!, '/machine/register', JSON.stringify(body));
      if (res.status !== 200) throw new Error(`logout ${name}: HTTP ${res.status} ${res.body}`);
    },
    /** The lite update a client sends when its endpoints change: Stream:false, OmitPeers:true. */
    async liteUpdate(): Promise<void> {
      generation++;
      const res = await h2Request(session!, '/machine/map', JSON.stringify(mapRequest(false)));
      if (res.status !== 200) throw new Error(`lite update ${name}: HTTP ${res.status}`);
    },
    onFrame(l: FrameListener): () => void {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    close(): void {
      session?.destroy();
      client?.conn.destroy();
      stream = undefined;
    },
  };
}

export type SimNode = ReturnType<typeof createSimNode>;
