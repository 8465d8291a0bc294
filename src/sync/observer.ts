/**
 * What the sync loop reports about its own work (rounds and their results, leadership), so an observer such as
 * the metrics registry can count it without the sync layer knowing how it is counted.
 */
import type { RoundOutcome } from './round.ts';

export interface SyncObserver {
  /** A round ended, whatever its result; `seconds` from reading the desired state to the last write. */
  round(outcome: RoundOutcome, seconds: number): void;
  /** Whether this process leads the tailnet's sync processes (asked again on every lease renewal). */
  leading(leader: boolean): void;
}
