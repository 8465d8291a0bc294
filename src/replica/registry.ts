/**
 * The replica layer's own tables in PostgreSQL and the registry of live replicas: each replica has a row
 * with a heartbeat (every `heartbeatMs`), its change-log cursor and its embedded DERP region. A replica whose
 * heartbeat is older than `staleMs` counts as dead: the leader deletes its row and its presence rows (see
 * presence.ts), announcing both so every replica drops its DERP region and its clients' online state.
 */
import type { SharedLog } from '../store/store.ts';

/** Created on start by whichever replica comes first; every statement is idempotent. */
const schema = [
  `CREATE TABLE IF NOT EXISTS replicas (
     id TEXT PRIMARY KEY,
     heartbeat TIMESTAMPTZ NOT NULL DEFAULT now(),
     started TIMESTAMPTZ NOT NULL DEFAULT now(),
     cursor BIGINT NOT NULL DEFAULT 0,
     derp_region INTEGER,
     derp_code TEXT,
     derp_url TEXT,
     stun_port INTEGER)`,
  `CREATE TABLE IF NOT EXISTS presence (
     node_id BIGINT NOT NULL,
     replica TEXT NOT NULL,
     since TIMESTAMPTZ NOT NULL DEFAULT now(),
     PRIMARY KEY (node_id, replica))`,
  `CREATE TABLE IF NOT EXISTS replica_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)`,
];

/** Creates the tables; two replicas starting together may race on the catalog, so a failure is retried once. */
export function ensureSchema(shared: SharedLog): void {
  for (const sql of schema) {
    try {
      shared.query(sql);
    } catch {
      shared.query(sql);
    }
  }
}

/** This replica's embedded relay as the other replicas advertise it. */
export interface DerpRegionInfo {
  readonly regionId: number;
  readonly regionCode: string;
  readonly url: string;
  readonly stunPort: number | null;
}

export interface LiveReplica {
  readonly id: string;
  readonly derp: DerpRegionInfo | null;
}

/** Seconds a replica may miss heartbeats before it counts as dead. */
export const staleSeconds = 15;

export function createRegistry(shared: SharedLog, derp: DerpRegionInfo | null) {
  const self = shared.origin;
  return {
    /** Inserts (or revives) this replica's row and tells the others. */
    register(cursor: number): void {
      shared.query(
        `INSERT INTO replicas (id, cursor, derp_region, derp_code, derp_url, stun_port) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET heartbeat = now(), cursor = EXCLUDED.cursor`,
        [self, cursor, derp?.regionId ?? null, derp?.regionCode ?? null, derp?.url ?? null, derp?.stunPort ?? null],
      );
      shared.announce('replica', [self]);
    },
    /** Refreshes the heartbeat; false when the row is gone (the leader thought us dead), so the caller re-registers. */
    heartbeat(cursor: number): boolean {
      return shared.query(`UPDATE replicas SET heartbeat = now(), cursor = $2 WHERE id = $1 RETURNING id`, [self, cursor]).length > 0;
    },
    live(): LiveReplica[] {
      const rows = shared.query(
        `SELECT id, derp_region, derp_code, derp_url, stun_port FROM replicas
         WHERE heartbeat > now() - make_interval(secs => $1) ORDER BY derp_region, id`,
        [staleSeconds],
      );
      return rows.map((r) => ({
        id: String(r.id),
        derp: r.derp_region === null ? null : { regionId: Number(r.derp_region), regionCode: String(r.derp_code), url: String(r.derp_url), stunPort: r.stun_port === null ? null : Number(r.stun_port) },
      }));
    },
    /**
     * The leader's sweep: forgets dead replicas and their clients' presence (announcing each node, so every
     * replica marks it offline), and prunes change-log rows older than an hour that every live replica has read.
     */
    sweep(): void {
      const dead = shared.query(`DELETE FROM replicas WHERE heartbeat <= now() - make_interval(secs => $1) RETURNING id`, [staleSeconds]);
      for (const r of dead) {
        const gone = shared.query(`DELETE FROM presence WHERE replica = $1 RETURNING node_id`, [r.id]);
        shared.announce('presence', gone.map((p) => String(p.node_id)));
        shared.announce('replica', [String(r.id)]);
      }
      // Presence rows whose replica row is gone (a crash between the two deletes above).
      const orphans = shared.query(`DELETE FROM presence WHERE replica NOT IN (SELECT id FROM replicas) RETURNING node_id`);
      shared.announce('presence', orphans.map((p) => String(p.node_id)));
      shared.query(
        `DELETE FROM change_log WHERE at < now() - interval '1 hour' AND seq < (SELECT coalesce(min(cursor), 0) FROM replicas)`,
      );
    },
    /** Removes this replica on a clean shutdown, so its region and presence go at once. */
    leave(): void {
      const gone = shared.query(`DELETE FROM presence WHERE replica = $1 RETURNING node_id`, [self]);
      shared.query(`DELETE FROM replicas WHERE id = $1`, [self]);
      shared.announce('presence', gone.map((p) => String(p.node_id)));
      shared.announce('replica', [self]);
    },
  };
}

/**
 * The Noise key every replica presents (clients pin it per server URL): the first replica stores its own
 * (so a tailnet moved from a single server keeps its key), later ones take the stored one.
 */
export function sharedNoiseKeyText(shared: SharedLog, ownKeyText: string): string {
  shared.query(`INSERT INTO replica_secrets (name, value) VALUES ('noise_key', $1) ON CONFLICT (name) DO NOTHING`, [ownKeyText]);
  return String(shared.query(`SELECT value FROM replica_secrets WHERE name = 'noise_key'`)[0]!.value);
}
