/**
 * Ephemeral node clean-up: an ephemeral node that stays offline for the inactivity timeout is deleted; a
 * reconnect cancels the timer, and the deletion re-checks that the node is still offline.
 */
import type { Change } from './changes.ts';
import type { Tailnet } from './tailnet.ts';

export function createEphemeralReaper(t: Tailnet, opts: { inactivityMs: number; onError?: (err: unknown) => void }) {
  const timers = new Map<number, NodeJS.Timeout>();
  const cancel = (id: number) => {
    clearTimeout(timers.get(id));
    timers.delete(id);
  };
  const reap = (id: number) => {
    timers.delete(id);
    const node = t.nodes.find(id);
    if (!node || !node.ephemeral || t.nodes.isOnline(id)) return;
    try {
      t.nodes.remove(id);
    } catch (err) {
      opts.onError?.(err);
    }
  };
  const schedule = (id: number) => {
    cancel(id);
    const timer = setTimeout(() => reap(id), opts.inactivityMs);
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
