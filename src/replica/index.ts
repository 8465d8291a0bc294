/**
 * A tailplane replica on a shared PostgreSQL: ties together the change bus (other replicas' writes reach
 * this one's streams), presence (online state across replicas), the registry of live replicas (heartbeats,
 * their DERP regions) and leader election (one replica runs the background work that must run once).
 */
import type pg from 'pg';
import type { ChangeRef, SharedLog } from '../store/store.ts';
import type { RemoteEntity } from '../state/core.ts';
import type { Tailnet } from '../state/tailnet.ts';
import { startBus, type BusStatus } from './bus.ts';
import { startLeaderElection } from './leader.ts';
import { createPresence } from './presence.ts';
import { createRegistry, ensureSchema, type DerpRegionInfo } from './registry.ts';

export { sharedNoiseKeyText, ensureSchema, type DerpRegionInfo } from './registry.ts';

const remoteEntities = new Set<string>(['user', 'node', 'pre_auth_key', 'api_key', 'oauth_client', 'oauth_token', 'setting', 'ssh_check'] satisfies RemoteEntity[]);

export interface ReplicaOptions {
  /** The PostgreSQL URL, for the bus's and the election's own connections. */
  readonly url: string;
  readonly connection?: Omit<pg.ClientConfig, 'connectionString'>;
  readonly shared: SharedLog;
  /** The change log's last seq read before the tailnet was loaded. */
  readonly from: number;
  readonly tailnet: Tailnet;
  /** This replica's embedded relay, advertised to clients of every replica; null without one. */
  readonly derp: DerpRegionInfo | null;
  /** Called with every live replica's relay whenever that list changes (and once at start). */
  readonly onDerpRegions?: (regions: DerpRegionInfo[]) => void;
  readonly onLeader?: (leader: boolean) => void;
  readonly heartbeatMs?: number;
  readonly pollMs?: number;
  readonly leaderRetryMs?: number;
  readonly log?: { warn(obj: object, msg?: string): void; info(msg: string): void };
}

export interface ReplicaStatus {
  readonly id: string;
  readonly leader: boolean;
  readonly notifications: BusStatus;
  readonly replicas: number;
  /** Nodes connected to this replica itself. */
  readonly clients: number;
}

export interface Replica {
  isLeader(): boolean;
  status(): ReplicaStatus;
  /** Applies every change other replicas committed until now (see Bus.catchUp). */
  catchUp(): void;
  /** Leaves the registry (when the database answers) and closes the bus and election connections. */
  stop(): Promise<void>;
}

export function startReplica(opts: ReplicaOptions): Replica {
  const { shared, tailnet, log } = opts;
  ensureSchema(shared);
  const registry = createRegistry(shared, opts.derp);
  const presence = createPresence(shared, tailnet, log);
  let regionsJson = '';
  let liveCount = 0;
  const refreshReplicas = () => {
    const live = registry.live();
    liveCount = live.length;
    const regions = live.flatMap((r) => (r.derp ? [r.derp] : []));
    const json = JSON.stringify(regions);
    if (json !== regionsJson) {
      regionsJson = json;
      opts.onDerpRegions?.(regions);
    }
  };
  /** Reads each entity's changed rows in one query, then applies them in log order, each record once. */
  const apply = (refs: ChangeRef[]) => {
    const ids = new Map<string, Set<string>>();
    for (const ref of refs) ids.set(ref.entity, (ids.get(ref.entity) ?? new Set()).add(ref.id));
    const records = new Map<string, Map<string, unknown>>();
    for (const [entity, set] of ids) if (remoteEntities.has(entity)) records.set(entity, shared.read(entity, [...set]));
    const done = new Set<string>();
    for (const ref of refs) {
      const key = `${ref.entity}\0${ref.id}`;
      if (done.has(key) || !records.has(ref.entity)) continue;
      done.add(key);
      tailnet.applyRemote(ref.entity as RemoteEntity, ref.id, records.get(ref.entity)!.get(ref.id) ?? null);
    }
    if (ids.has('replica')) {
      refreshReplicas();
      presence.applyAll();
    } else if (ids.has('presence')) presence.applyNodes([...ids.get('presence')!].map(Number));
  };

  registry.register(opts.from);
  refreshReplicas();
  presence.applyAll();
  const bus = startBus({ url: opts.url, connection: opts.connection, shared, from: opts.from, apply, pollMs: opts.pollMs, log });
  const leader = startLeaderElection({
    url: opts.url,
    connection: opts.connection,
    retryMs: opts.leaderRetryMs,
    log,
    onChange: (on) => {
      log?.info(on ? 'this replica is now the leader' : 'this replica is no longer the leader');
      opts.onLeader?.(on);
    },
  });

  let beatFailed = false;
  const beat = () => {
    try {
      const cursor = bus.status().cursor;
      if (registry.heartbeat(cursor)) presence.resync();
      else {
        // The leader swept us (we were cut off for longer than the staleness limit): come back whole.
        registry.register(cursor);
        presence.resync(true);
      }
      if (leader.isLeader()) registry.sweep();
      refreshReplicas();
      presence.applyAll();
      if (beatFailed) log?.info('replica heartbeat recorded again');
      beatFailed = false;
    } catch (err) {
      if (!beatFailed) log?.warn({ err: (err as Error).message }, 'replica heartbeat failed');
      beatFailed = true;
    }
  };
  const heartbeat = setInterval(beat, opts.heartbeatMs ?? 5000);
  heartbeat.unref();

  return {
    isLeader: leader.isLeader,
    catchUp: bus.catchUp,
    status: () => ({ id: shared.origin, leader: leader.isLeader(), notifications: bus.status(), replicas: liveCount, clients: tailnet.nodes.localOnline().length }),
    async stop() {
      clearInterval(heartbeat);
      presence.stop();
      await bus.stop();
      await leader.stop();
      try {
        registry.leave();
      } catch {
        // The database is down: the leader's sweep removes us once our heartbeat is stale.
      }
    },
  };
}
