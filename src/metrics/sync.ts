/**
 * Prometheus metrics of the continuous-sync loop, in the registry of the process that runs the rounds: the
 * server's when `serve` runs sync from its config, else the `tailplane sync` process's own (`--metrics-listen`).
 * They answer what an operator alerts on: is the tailnet at the commit in Git, since when, and is sync failing.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RoundOutcome } from '../sync/round.ts';
import type { SyncObserver } from '../sync/observer.ts';

const results: RoundOutcome['result'][] = ['in-sync', 'applied', 'drift', 'failed'];
/** A round fetches from Git, reads the live tailnet, plans and writes one batch: tenths of a second to minutes. */
const roundBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export function syncMetrics(registry: Registry): SyncObserver {
  const registers = [registry];
  const rounds = new Counter({
    name: 'tailplane_sync_rounds_total',
    help: 'Sync rounds by result: in-sync, applied, drift (reported only) or failed.',
    labelNames: ['result'],
    registers,
  });
  for (const result of results) rounds.inc({ result }, 0);
  const duration = new Histogram({
    name: 'tailplane_sync_round_duration_seconds',
    help: 'Time of one sync round, from fetching the desired state to its last write.',
    buckets: roundBuckets,
    registers,
  });
  const lastSuccess = new Gauge({
    name: 'tailplane_sync_last_success_timestamp_seconds',
    help: 'When the last round that did not fail ended (Unix time); 0 before the first.',
    registers,
  });
  const failures = new Gauge({
    name: 'tailplane_sync_consecutive_failures',
    help: 'Rounds failed in a row since the last one that did not fail.',
    registers,
  });
  const drift = new Gauge({
    name: 'tailplane_sync_drift_objects',
    help: 'Objects the last successful round found differing from the desired state (corrected in enforce mode).',
    registers,
  });
  const revision = new Gauge({
    name: 'tailplane_sync_revision_info',
    help: 'The revision last applied or found in sync (Git commit, or sha256 of the file); always 1.',
    labelNames: ['revision'],
    registers,
  });
  const leader = new Gauge({
    name: 'tailplane_sync_leader',
    help: '1 while this process leads the tailnet\'s sync processes, else 0.',
    registers,
  });

  return {
    round(outcome, seconds) {
      rounds.inc({ result: outcome.result });
      duration.observe(seconds);
      if (outcome.result === 'failed') return void failures.inc();
      failures.set(0);
      lastSuccess.set(Date.parse(outcome.finishedAt) / 1000);
      drift.set(outcome.drift.length);
      // A report-mode round that found drift says nothing about which revision is live.
      if (outcome.result !== 'drift' && outcome.revision) {
        revision.reset();
        revision.set({ revision: outcome.revision }, 1);
      }
    },
    leading: (is) => leader.set(is ? 1 : 0),
  };
}
