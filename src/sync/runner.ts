/**
 * The continuous-sync loop: every interval (or when the watched file changes) the process that holds the `sync`
 * lease runs a round and reports its status to the server (GET /api/v1/sync); the others stand by and take over
 * when the leader's lease runs out. Drift, failure and recovery are announced to a webhook without waiting.
 */
import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, resolve } from 'node:path';
import { ApiError, type AdminClient } from '../client/admin-client.ts';
import { tailnetApi } from '../client/tailnet-api.ts';
import { redactUrl } from './git.ts';
import { runRound, shortRev, type RoundOutcome, type SyncMode, type SyncSource } from './round.ts';
import type { SyncObserver } from './observer.ts';
import type { Webhook } from './webhook.ts';

/** The lease the sync processes of one tailnet elect their leader with (the admin API's `sync` lease). */
export const leaderLease = 'sync';

export interface SyncOptions {
  readonly client: AdminClient;
  readonly source: SyncSource;
  readonly mode: SyncMode;
  readonly intervalMs: number;
  readonly webhook?: Webhook;
  /** Told of every round and of this process's role (the metrics registry). */
  readonly observer?: SyncObserver;
  readonly log?: (msg: string) => void;
}

/** What GET /api/v1/sync and `tailplane sync status` show. */
export interface SyncStatus {
  readonly holder: string;
  readonly mode: SyncMode;
  readonly source: Record<string, string>;
  readonly intervalSeconds: number;
  readonly lastRound?: RoundOutcome;
  /** The last revision that was fully live (applied, or found in sync). */
  readonly lastGood?: { readonly revision?: string; readonly at: string };
  readonly consecutiveFailures: number;
  readonly nextRoundAt?: string;
}

/** How long a watched file must be unchanged before a round reads it. */
const watchSettleMs = 200;

export function describeSource(s: SyncSource): Record<string, string> {
  return s.kind === 'git' ? { git: redactUrl(s.url), ref: s.ref, path: s.path } : { file: s.file };
}

export function createSyncRunner(opts: SyncOptions) {
  const api = tailnetApi(opts.client);
  const log = opts.log ?? (() => undefined);
  const holder = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  // Long enough to survive a slow round, short enough that a standby takes over soon after a crash; the leader
  // renews it (and a standby tries for it) three times per lease, whatever the interval.
  const leaseSeconds = Math.min(3600, Math.max(5, Math.ceil((opts.intervalMs * 3) / 1000)));
  let heartbeat: NodeJS.Timeout | undefined;
  let status: SyncStatus = { holder, mode: opts.mode, source: describeSource(opts.source), intervalSeconds: opts.intervalMs / 1000, consecutiveFailures: 0 };
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  let settle: NodeJS.Timeout | undefined;
  let saving = false;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let role: 'new' | 'leader' | 'standby' = 'new';
  let lastDriftKey = '';

  /** Takes or renews the leader lease; logs only when this process's role changes. */
  async function lead(): Promise<boolean> {
    const was = role;
    try {
      await api.acquireLease(leaderLease, holder, leaseSeconds);
      role = 'leader';
    } catch (err) {
      role = 'standby';
      if (was !== 'standby' || !(err instanceof ApiError && err.status === 409)) log(`sync: standing by: ${(err as Error).message}`);
    }
    if (role === 'leader' && was !== 'leader') log(`sync: leading as ${holder}`);
    opts.observer?.leading(role === 'leader');
    return role === 'leader';
  }

  function announce(outcome: RoundOutcome, before: SyncStatus): void {
    const hook = opts.webhook;
    const payload = () => ({ mode: opts.mode, source: status.source, round: outcome, lastGood: status.lastGood, markdown: outcome.markdown ?? outcome.error?.message });
    if (outcome.result === 'failed') {
      log(`sync: round failed at ${outcome.revision ? shortRev(outcome.revision) : 'unknown revision'}: ${outcome.error?.message}`);
      if (before.consecutiveFailures === 0 || before.lastRound?.error?.message !== outcome.error?.message) hook?.send('failure', payload());
      return;
    }
    if (before.consecutiveFailures > 0) hook?.send('recovery', payload());
    if (outcome.result === 'in-sync') return void (lastDriftKey = '');
    log(`sync: ${outcome.result === 'applied' ? 'applied' : 'found'} ${outcome.drift.length} change(s) at ${shortRev(outcome.revision!)}`);
    // Report mode sees the same drift every round: announce it once, until it changes.
    const key = JSON.stringify([outcome.result, outcome.revision, outcome.drift]);
    if (outcome.result === 'applied' || key !== lastDriftKey) hook?.send('drift', payload());
    lastDriftKey = key;
  }

  async function round(): Promise<void> {
    if (!(await lead())) return;
    const started = performance.now();
    const outcome = await runRound({ client: opts.client, source: opts.source, mode: opts.mode, holder, leaseSeconds });
    // A round that read the watched file half-saved fails: the save's own round confirms or clears it. Its watch
    // events may still be queued behind the read, so they get one settle period to arrive.
    if (outcome.result === 'failed' && watcher) await sleep(watchSettleMs);
    if (outcome.result === 'failed' && (saving || again)) return;
    opts.observer?.round(outcome, (performance.now() - started) / 1000);
    const before = status;
    const good = outcome.result === 'applied' || outcome.result === 'in-sync' || outcome.result === 'drift';
    status = {
      ...status,
      lastRound: outcome,
      lastGood: outcome.result === 'applied' || outcome.result === 'in-sync' ? { revision: outcome.revision, at: outcome.finishedAt } : status.lastGood,
      consecutiveFailures: good ? 0 : status.consecutiveFailures + 1,
    };
    announce(outcome, before);
  }

  async function push(): Promise<void> {
    if (role !== 'leader') return;
    await api.reportSync(holder, status as unknown as Record<string, unknown>).catch((err: Error) => log(`sync: cannot report status: ${err.message}`));
  }

  function schedule(ms: number): void {
    if (stopped) return;
    clearTimeout(timer);
    status = { ...status, nextRoundAt: new Date(Date.now() + ms).toISOString() };
    timer = setTimeout(trigger, ms);
  }

  /** Runs a round now, or right after the one in progress. */
  function trigger(): void {
    if (stopped) return;
    if (running) return void (again = true);
    running = (async () => {
      do {
        again = false;
        await round().catch((err: Error) => log(`sync: ${err.message}`));
      } while (again && !stopped);
      schedule(opts.intervalMs);
      await push();
    })().finally(() => (running = undefined));
  }

  return {
    holder,
    status: () => status,
    /** Starts the loop (first round now) and, for a file source, watches its folder. */
    start(): void {
      if (opts.source.kind === 'file') {
        const file = resolve(opts.source.file);
        // Editors replace files by renaming: watch the folder and match the name. One save is several events
        // (truncate, write, rename): the round starts once the file has been quiet for a moment.
        watcher = watch(dirname(file), (_, name) => {
          if (!name || resolve(dirname(file), name.toString()) !== file) return;
          saving = true;
          clearTimeout(settle);
          settle = setTimeout(() => {
            saving = false;
            trigger();
          }, watchSettleMs);
        });
      }
      trigger();
      heartbeat = setInterval(() => {
        if (running) return;
        const was = role;
        void lead().then((leads) => leads && was !== 'leader' && trigger());
      }, (leaseSeconds * 1000) / 3);
    },
    /** One round, as `tailplane sync --once` runs it. */
    async once(): Promise<SyncStatus> {
      await round();
      await push();
      return status;
    },
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      clearInterval(heartbeat);
      clearTimeout(settle);
      watcher?.close();
      await running;
      await opts.webhook?.close();
      if (role === 'leader') await api.releaseLease(leaderLease, holder).catch(() => undefined);
    },
  };
}

export type SyncRunner = ReturnType<typeof createSyncRunner>;
