/**
 * Online state across replicas: each replica writes a presence row per node connected to it (and deletes it
 * when the node leaves), announcing the node; every other replica then reads whether any live replica still
 * has the node and shows it online or offline (nodes.setRemoteOnline). A write that fails (database down)
 * leaves the rows out of step: the next heartbeat rewrites this replica's rows from its own connections.
 */
import type { SharedLog } from '../store/store.ts';
import type { Tailnet } from '../state/tailnet.ts';
import { staleSeconds } from './registry.ts';

export function createPresence(shared: SharedLog, tailnet: Tailnet, log?: { warn(obj: object, msg?: string): void }) {
  const self = shared.origin;
  /** Nodes this replica shows online because of another replica. */
  const remote = new Set<number>();
  let outOfStep = false;

  /** Presence changes not written yet: a burst of connections (mass connect, restart) goes as one write. */
  const pending = new Map<number, boolean>();
  /** Writes what is pending; the event loop goes on meanwhile unless `wait` (stopping). */
  const flush = (wait = false) => {
    if (pending.size === 0) return;
    const ids = [...pending.keys()];
    const on = ids.filter((id) => pending.get(id));
    const off = ids.filter((id) => !pending.get(id));
    pending.clear();
    const write = {
      sql: `WITH gone AS (DELETE FROM presence WHERE replica = $1 AND node_id = ANY($3::bigint[]))
            INSERT INTO presence (node_id, replica) SELECT unnest($2::bigint[]), $1 ON CONFLICT DO NOTHING`,
      params: [self, on, off],
    };
    const failed = (err: unknown) => {
      if (!outOfStep) log?.warn({ err: (err as Error).message }, 'presence not recorded; will resync');
      outOfStep = true;
    };
    try {
      if (wait) shared.announce('presence', ids.map(String), write);
      else shared.announceLater('presence', ids.map(String), write).catch(failed);
    } catch (err) {
      failed(err);
    }
  };
  const write = (id: number, online: boolean) => {
    if (pending.size === 0) setImmediate(() => flush());
    pending.set(id, online);
  };
  const unwatch = tailnet.nodes.watchPresence(write);

  const show = (id: number, online: boolean) => {
    if (online) remote.add(id);
    else remote.delete(id);
    tailnet.nodes.setRemoteOnline(id, online);
  };

  return {
    /** Other replicas announced these nodes' presence changed: is each connected to any live replica but us? */
    applyNodes(ids: number[]): void {
      const rows = shared.query(
        `SELECT DISTINCT p.node_id FROM presence p JOIN replicas r ON r.id = p.replica
         WHERE p.node_id = ANY($1::bigint[]) AND p.replica <> $2 AND r.heartbeat > now() - make_interval(secs => $3)`,
        [ids, self, staleSeconds],
      );
      const online = new Set(rows.map((r) => Number(r.node_id)));
      for (const id of ids) show(id, online.has(id));
    },
    /** Reads every other live replica's presence (on start, and when replicas come or go). */
    applyAll(): void {
      const rows = shared.query(
        `SELECT DISTINCT p.node_id FROM presence p JOIN replicas r ON r.id = p.replica
         WHERE p.replica <> $1 AND r.heartbeat > now() - make_interval(secs => $2)`,
        [self, staleSeconds],
      );
      const now = new Set(rows.map((r) => Number(r.node_id)));
      for (const id of [...remote]) if (!now.has(id)) show(id, false);
      for (const id of now) if (!remote.has(id)) show(id, true);
    },
    /** Rewrites this replica's rows from its own connections when a write failed or the rows were swept. */
    resync(force = false): void {
      if (!outOfStep && !force) return;
      const mine = tailnet.nodes.localOnline();
      const gone = shared.query(`DELETE FROM presence WHERE replica = $1 AND NOT (node_id = ANY($2::bigint[])) RETURNING node_id`, [self, mine]);
      const added = shared.query(
        `INSERT INTO presence (node_id, replica) SELECT unnest($2::bigint[]), $1 ON CONFLICT DO NOTHING RETURNING node_id`,
        [self, mine],
      );
      shared.announce('presence', [...gone, ...added].map((r) => String(r.node_id)));
      outOfStep = false;
    },
    stop(): void {
      unwatch();
      flush(true);
    },
  };
}
