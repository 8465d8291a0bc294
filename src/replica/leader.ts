/**
 * Leader election among replicas: the leader is whoever holds a PostgreSQL session-level advisory lock on its
 * own dedicated connection. The lock lives exactly as long as that connection, so a replica that dies, hangs
 * off the network or loses its database session loses leadership with it — PostgreSQL frees the lock and the
 * next replica's attempt (every `retryMs`) takes it. Leader-only work (ephemeral GC, key expiry, route
 * failover, pruning) asks `isLeader()` before it runs.
 */
import pg from 'pg';

/** The advisory lock's key: one fixed number for "tailplane leader" (any 64-bit value no one else uses). */
export const leaderLockKey = 7_407_301_190_001n;

export interface LeaderOptions {
  readonly url: string;
  /** How often a follower tries to take the lock, and a leader checks its connection; 2 s when not given. */
  readonly retryMs?: number;
  /** Extra connection options (TLS). */
  readonly connection?: Omit<pg.ClientConfig, 'connectionString'>;
  readonly onChange?: (leader: boolean) => void;
  readonly log?: { warn(obj: object, msg?: string): void };
}

export interface Leader {
  isLeader(): boolean;
  stop(): Promise<void>;
}

export function startLeaderElection(opts: LeaderOptions): Leader {
  const retryMs = opts.retryMs ?? 2000;
  let client: pg.Client | undefined;
  let leader = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const set = (value: boolean) => {
    if (leader === value) return;
    leader = value;
    opts.onChange?.(value);
  };

  /** Drops the connection (and with it the lock) after an error; the next round connects anew. */
  const drop = (c: pg.Client, err?: Error) => {
    if (client !== c) return;
    client = undefined;
    set(false);
    if (err && !stopped) opts.log?.warn({ err: err.message }, 'leader election: database connection lost');
    c.end().catch(() => {});
  };

  const round = async () => {
    try {
      if (!client) {
        // A session that hangs (a partition rather than a reset) must not keep us believing we lead.
        const c = new pg.Client({ ...opts.connection, connectionString: opts.url, query_timeout: 2 * retryMs, connectionTimeoutMillis: 2 * retryMs });
        c.on('error', (err) => drop(c, err));
        c.on('end', () => drop(c));
        client = c;
        await c.connect();
      }
      const c = client;
      if (leader) {
        // The lock is ours while the session lives: a trivial query proves it still does.
        await c.query('SELECT 1');
      } else {
        const res = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [leaderLockKey.toString()]);
        if (client === c && !stopped) set(res.rows[0]!.ok);
      }
    } catch (err) {
      if (client) drop(client, err as Error);
    } finally {
      if (!stopped) timer = setTimeout(round, retryMs);
    }
  };
  void round();

  return {
    isLeader: () => leader,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      const c = client;
      client = undefined;
      set(false);
      await c?.end().catch(() => {});
    },
  };
}
