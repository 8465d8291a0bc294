/**
 * Ephemeral node clean-up: an ephemeral node that stays offline for the inactivity timeout is deleted; a
 * reconnect cancels the timer, and the deletion re-checks that the node is still offline.
 */
import type { Change } from './changes.ts';
import type { Tailnet } from './tailnet.ts';

export interface ReaperOptions {
  inactivityMs: number;
  /**
   * With replicas only the leader deletes (every replica counts down, so a new leader is ready at once);
   * a follower's due node is looked at again after another period. Always active when not given.
   */
  active?: () => boolean;
  onError?: (err: unknown) => void;
}

export function createEphemeralReaper(t: Tailnet, opts: ReaperOptions) {
  const timers = new Map<number, NodeJS.Timeout>();
  const cancel = (id: number) => {
    clearTimeout(timers.get(id));
    timers.delete(id);
  };
  const reap = (id: number) => {
    timers.delete(id);
    const node = t.nodes.find(id);
    if (!node || !node.ephemeral || t.nodes.isOnline(id)) return;
    if (opts.active && !opts.active()) return schedule(id, recheckMs);
    try {
      t.nodes.remove(id);
    } catch (err) {
      // The store refused or was unreachable: try again, or the node would stay until the next restart.
      opts.onError?.(err);
      schedule(id, recheckMs);
    }
  };
  /**
   * How soon a due node is looked at again when it could not be deleted now: a follower re-checks often, so a
   * leader change does not restart the whole countdown, and a deletion the store refused is tried again.
   */
  const recheckMs = Math.min(opts.inactivityMs, 5000);
  const schedule = (id: number, ms = opts.inactivityMs) => {
    cancel(id);
    const timer = setTimeout(() => reap(id), ms);
    timer.unref();
    timers.set(id, timer);
  };
  const onChange = (c: Change) => {
    if (c.kind === 'node-removed') return cancel(c.node.id);
    if (c.kind !== 'node-added' && c.kind !== 'node-updated') return;
    if (!c.node.ephemeral || t.nodes.isOnline(c.node.id)) return cancel(c.node.id);
    // Any other change while offline (an admin edit) must not restart the countdown.
    if (!timers.has(c.node.id)) schedule(c.node.id);
  };
  const unsubscribe = t.subscribe(onChange);
  // After a restart everyone starts offline: ephemeral nodes get a fresh countdown.
  for (const n of t.nodes.list()) if (n.ephemeral) schedule(n.id);
  return {
    stop(): void {
      unsubscribe();
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
    },
  };
}
