/**
 * The change bus between replicas: PostgreSQL's change log (written by every store transaction, see
 * src/store/postgres) read in seq order. A LISTEN on `tailplane_changes` (its own connection) wakes the reader
 * at once; a poll every `pollMs` and a read after every reconnect catch up on notifications that were missed
 * (they are not queued while nobody listens). Rows this replica wrote are skipped: it already applied them;
 * notifications of its own commits wake nothing (each would cost a read of rows it skips).
 *
 * Sequence numbers are handed out at insert, not at commit, so a slow transaction can commit a lower seq
 * after a higher one was read. Such gaps are remembered and re-read for a while (`holeMs`); a gap that never
 * fills was a rolled-back transaction.
 */
import pg from 'pg';
import { changeChannel, notifiedBy } from '../store/postgres/change-log.ts';
import type { ChangeRef, SharedLog } from '../store/store.ts';

export interface BusOptions {
  readonly url: string;
  readonly connection?: Omit<pg.ClientConfig, 'connectionString'>;
  readonly shared: SharedLog;
  /** Where to start: the log's last seq taken before the snapshot was loaded (replays are harmless). */
  readonly from: number;
  /** Takes in changes other replicas made, in seq order (a batch, so their rows can be read together). */
  readonly apply: (refs: ChangeRef[]) => void;
  readonly pollMs?: number;
  readonly holeMs?: number;
  /** How long a notification waits for more before the log is read (default notifiedReadMs). */
  readonly readMs?: number;
  readonly log?: { warn(obj: object, msg?: string): void; info(msg: string): void };
}

export interface BusStatus {
  /** The LISTEN connection is up. */
  readonly listening: boolean;
  /** The last catch-up read the log without an error. */
  readonly storeOk: boolean;
  /** The newest seq applied. */
  readonly cursor: number;
  readonly lastCatchUp: string | null;
  readonly lastError: string | null;
}

export interface Bus {
  status(): BusStatus;
  /** Reads and applies everything new now (also what the poll and notifications do). */
  catchUp(): void;
  stop(): Promise<void>;
}

const batch = 1000;
/**
 * How long after a notification the log is read. Each read blocks this replica's event loop for a round trip
 * that also waits for the commits it posted before; while other replicas commit hundreds of times a second (a
 * fleet joining through them) a read per event-loop turn kept each of three replicas at 20,000 nodes waiting
 * about 45 s of a 152 s mass connect; 24 s of 125 s with reads 25 ms apart (a change elsewhere arrives 25 ms later).
 */
const notifiedReadMs = 25;

export function startBus(opts: BusOptions): Bus {
  const pollMs = opts.pollMs ?? 2000;
  const holeMs = opts.holeMs ?? 10_000;
  const readMs = opts.readMs ?? notifiedReadMs;
  let cursor = opts.from;
  /** Seqs skipped over (not committed yet when read, or rolled back), with when they were first missed. */
  const holes = new Map<number, number>();
  let listening = false;
  let storeOk = true;
  let lastCatchUp: string | null = null;
  let lastError: string | null = null;
  let stopped = false;
  let client: pg.Client | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let scheduled = false;

  const take = (refs: ChangeRef[]) => {
    const theirs = refs.filter((ref) => ref.origin !== opts.shared.origin);
    if (theirs.length) opts.apply(theirs);
  };

  const fillHoles = () => {
    if (holes.size === 0) return;
    const now = Date.now();
    for (const [seq, since] of holes) if (now - since > holeMs) holes.delete(seq);
    if (holes.size === 0) return;
    const low = Math.min(...holes.keys());
    const high = Math.max(...holes.keys());
    take(opts.shared.since(low - 1, high - low + 1).filter((ref) => holes.delete(ref.seq)));
  };

  const catchUp = () => {
    if (stopped) return;
    try {
      fillHoles();
      for (;;) {
        const refs = opts.shared.since(cursor, batch);
        for (const ref of refs) {
          for (let s = cursor + 1; s < ref.seq; s++) holes.set(s, Date.now());
          cursor = ref.seq;
        }
        take(refs);
        if (refs.length < batch) break;
      }
      if (!storeOk) opts.log?.info('replica bus: change log readable again');
      storeOk = true;
      lastError = null;
      lastCatchUp = new Date().toISOString();
    } catch (err) {
      if (storeOk) opts.log?.warn({ err: (err as Error).message }, 'replica bus: cannot read the change log');
      storeOk = false;
      lastError = (err as Error).message;
    }
  };

  /** Coalesces a burst of notifications into one read, readMs after the first. */
  const soon = () => {
    if (scheduled || stopped) return;
    scheduled = true;
    setTimeout(() => {
      scheduled = false;
      catchUp();
    }, readMs);
  };

  const listen = async () => {
    if (stopped) return;
    const c = new pg.Client({ ...opts.connection, connectionString: opts.url, connectionTimeoutMillis: 5000, keepAlive: true });
    client = c;
    const lost = (err?: Error) => {
      if (client !== c) return;
      client = undefined;
      if (listening) opts.log?.warn({ err: err?.message ?? 'connection ended' }, 'replica bus: notifications lost, reconnecting');
      listening = false;
      c.end().catch(() => {});
      if (!stopped) reconnectTimer = setTimeout(() => void listen(), 1000);
    };
    c.on('error', lost);
    c.on('end', () => lost());
    c.on('notification', (n) => {
      // Our own commits need no read now (they are applied already): the poll moves the cursor past them.
      if (!notifiedBy(n.payload, opts.shared.origin)) soon();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${changeChannel}`);
      if (client !== c) return;
      listening = true;
      // Whatever was committed while nobody listened.
      soon();
    } catch (err) {
      lost(err as Error);
    }
  };

  void listen();
  const poll = setInterval(catchUp, pollMs);
  poll.unref();

  return {
    status: () => ({ listening, storeOk, cursor, lastCatchUp, lastError }),
    catchUp,
    async stop() {
      stopped = true;
      clearInterval(poll);
      clearTimeout(reconnectTimer);
      const c = client;
      client = undefined;
      listening = false;
      await c?.end().catch(() => {});
    },
  };
}
