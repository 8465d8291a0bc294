/**
 * POST /machine/map: streaming long-polls (full map, then deltas and keep-alives), lite updates that only
 * report endpoints and hostinfo, and one-shot fetches. A request is served only for the node whose machine
 * key is the Noise peer's (trap T39).
 */
import type { Endpoint } from '../domain/types.ts';
import type { Tailnet } from '../state/tailnet.ts';
import type { FrameEncoder } from './frames.ts';
import type { Http2Response } from './http2/stream.ts';
import type { Mapper, Session } from './mapper.ts';
import type { ControlObserver, MapResponseKind } from './observer.ts';
import { isKeyText, isPresentKey } from './noise/keys.ts';
import { ProtocolError } from './register.ts';
import type { NoisePeer } from './upgrade.ts';
import type { MapRequest } from './wire.ts';

/** Keep-alives every 50–59 s, well inside the client's 120 s watchdog (trap T14). */
const keepAliveMs = () => 50_000 + Math.floor(Math.random() * 9_000);
/**
 * A client more than a few full maps' worth behind in reading its stream is cut off: its stream is reset, which
 * drops the queue (a graceful end kept it until the client read it all), and reconnecting, it gets one fresh full
 * map, less than the backlog. The cap follows the size of the client's maps, at least Limits.mapBacklogBytes (it
 * was a flat 16 MiB per stream, which across thousands of slow readers bounded nothing).
 */
const backlogFullMaps = 4;
/** A stream that closes marks its node offline only after this grace, so a quick reconnect does not flap. */
const offlineGraceMs = 3_000;

export interface MapDeps {
  readonly tailnet: Tailnet;
  readonly mapper: Mapper;
  readonly frames: FrameEncoder;
  readonly observer: ControlObserver;
  /** The smallest backlog cap (Limits.mapBacklogBytes). */
  readonly minBacklogBytes: number;
}

/** Endpoints a peer can use: drops link-local and zoned IPv6 addresses. */
function endpointsOf(req: MapRequest): Endpoint[] | undefined {
  if (!Array.isArray(req.Endpoints)) return undefined;
  return req.Endpoints.filter((e) => typeof e === 'string' && !e.includes('%') && !/^\[fe80:/i.test(e)).map((addr, i) => ({
    addr,
    type: req.EndpointTypes?.[i] ?? 0,
  }));
}

export function createMapHandler(deps: MapDeps) {
  const t = deps.tailnet;
  const keepAlive = deps.frames.encode({ KeepAlive: true });
  const offlineTimers = new Map<number, NodeJS.Timeout>();
  /** Set at shutdown: streams that close afterwards must not schedule writes to a store about to close. */
  let stopped = false;

  const nodeFor = (req: MapRequest, peer: NoisePeer) => {
    if (!isKeyText('nodekey:', req.NodeKey)) throw new ProtocolError(400, 'map request needs a NodeKey (nodekey: and 64 lowercase hex)');
    if (req.DiscoKey !== undefined && !isKeyText('discokey:', req.DiscoKey)) {
      throw new ProtocolError(400, 'malformed DiscoKey: expected discokey: and 64 lowercase hex');
    }
    const node = t.nodes.byNodeKey(req.NodeKey);
    if (!node || node.machineKey !== peer.machineKey) throw new ProtocolError(404, 'node not found');
    return node;
  };

  const report = (nodeId: number, req: MapRequest, lite: boolean) => {
    const endpoints = endpointsOf(req);
    t.nodes.report(nodeId, {
      discoKey: isPresentKey('discokey:', req.DiscoKey) ? req.DiscoKey : undefined,
      // A streaming request's endpoints may be stale (CapVer ≥ 68); the lite update carries the real ones.
      endpoints: lite || (endpoints && endpoints.length) ? endpoints : undefined,
      hostinfo: req.Hostinfo ?? undefined,
    });
  };

  const setOnline = (nodeId: number) => {
    clearTimeout(offlineTimers.get(nodeId));
    offlineTimers.delete(nodeId);
    t.nodes.setOnline(nodeId, true);
  };

  const setOfflineLater = (nodeId: number) => {
    if (stopped) return;
    clearTimeout(offlineTimers.get(nodeId));
    offlineTimers.set(
      nodeId,
      setTimeout(() => {
        offlineTimers.delete(nodeId);
        if (!deps.mapper.has(nodeId)) t.nodes.setOnline(nodeId, false);
      }, offlineGraceMs),
    );
  };

  async function stream(nodeId: number, res: Http2Response, oneShot: boolean): Promise<void> {
    // The headers go out with the first frame, in one write, as Tailscale's server sends them: the client's
    // watchdog (two minutes) covers the wait for both.
    const head = () => {
      if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/octet-stream' });
    };
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    let backlogCap = deps.minBacklogBytes;
    const write = (frame: Buffer, kind: MapResponseKind) => {
      if (ended) return;
      if (res.writableLength > backlogCap) return cutOff();
      head();
      res.write(frame);
      deps.observer.mapResponse(kind);
    };
    /** Ends the stream without flushing what is queued: a graceful end would wait for the client to read it all. */
    const cutOff = () => {
      session.end();
      res.reset();
    };
    const session: Session = {
      nodeId,
      send: (frame: Buffer) => write(frame, 'delta'),
      end: () => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        head();
        res.end();
      },
    };
    if (oneShot) {
      const map = await deps.mapper.snapshot(nodeId);
      if (map) write(map, 'full');
      return session.end();
    }
    res.onClose(() => {
      ended = true;
      clearTimeout(timer);
      deps.mapper.close(session);
      setOfflineLater(nodeId);
    });
    const first = await deps.mapper.open(session);
    // The client may have gone away (or the server begun to shut down) while the first map waited for the policy.
    if (ended || stopped) {
      deps.mapper.close(session);
      return session.end();
    }
    if (!first) return session.end();
    setOnline(nodeId);
    backlogCap = Math.max(deps.minBacklogBytes, backlogFullMaps * first.length);
    write(first, 'full');
    const tick = () => {
      write(keepAlive, 'keepalive');
      timer = setTimeout(tick, keepAliveMs());
    };
    timer = setTimeout(tick, keepAliveMs());
  }

  return {
    handle(req: MapRequest, peer: NoisePeer, res: Http2Response): Promise<void> | void {
      if (stopped) throw new ProtocolError(503, 'server shutting down');
      const node = nodeFor(req, peer);
      const lite = !req.Stream && req.OmitPeers === true;
      report(node.id, req, lite);
      if (lite) {
        res.writeHead(200);
        res.end();
        return;
      }
      return stream(node.id, res, !req.Stream);
    },
    /** Stops the offline timers for good; streams still open are ended by the mapper. */
    stop(): void {
      stopped = true;
      for (const t of offlineTimers.values()) clearTimeout(t);
      offlineTimers.clear();
    },
  };
}
