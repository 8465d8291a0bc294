/**
 * Tailscale SSH checks: sessions a destination node holds until a person approves or denies them (or nobody
 * does in time), and the approvals that let later sessions of the same user to the same node through for the
 * rule's check period. Every state change is committed to the store first, so a decided check stays on record
 * and a restart neither forgets a pending check nor approves it.
 */
import { randomBytes } from 'node:crypto';
import type { SshCheck } from '../domain/types.ts';
import type { Core } from './core.ts';
import { conflict, notFound } from './errors.ts';

/**
 * A check's id: 12 base64url characters, never starting with "-". The person approving types it after
 * `tailplane ssh approve`, whose argument parser reads a leading "-" as a flag: one id in 64 could not be approved.
 */
export function newCheckId(): string {
  for (;;) {
    const id = randomBytes(9).toString('base64url');
    if (id[0] !== '-') return id;
  }
}

export interface SshCheckOptions {
  /** How long a check may stay pending before it fails with a timeout. */
  readonly timeoutMs: number;
  readonly now: () => Date;
}

/** What the control plane knows when a destination node asks about a new session. */
export type NewSshCheck = Omit<SshCheck, 'id' | 'state' | 'createdAt' | 'deadline' | 'decidedAt' | 'decidedBy' | 'validUntil'>;

/** A decided check stays in memory this long, so a destination polling again still reads its outcome. */
const decidedRetentionMs = 3_600_000;

export function createSshChecks(core: Core, opts: SshCheckOptions) {
  const { ix } = core;
  const waiters = new Map<string, Set<(c: SshCheck) => void>>();
  const timers = new Map<string, NodeJS.Timeout>();
  const listeners = new Set<(c: SshCheck) => void>();
  const nowMs = () => opts.now().getTime();
  const admits = (c: SshCheck) => c.state === 'approved' && c.validUntil !== null && Date.parse(c.validUntil) > nowMs();

  const save = (c: SshCheck): SshCheck => {
    const saved = core.write((tx) => {
      const frozen = Object.freeze(c);
      tx.putSshCheck(frozen);
      const summary = `${frozen.srcUser}@${frozen.srcNode} → ${frozen.localUser}@${frozen.dstNode}: ${frozen.state}`;
      return { result: frozen, apply: () => ix.sshChecks.set(frozen.id, frozen), audit: [{ action: `ssh-check.${frozen.state}`, object: `ssh-check:${frozen.id}`, summary }] };
    });
    settle(saved);
    return saved;
  };

  /** Tells listeners of a committed check and, once it is decided (here or on another replica), ends its long polls. */
  const settle = (c: SshCheck) => {
    for (const l of listeners) l(c);
    if (c.state === 'pending') return;
    clearTimeout(timers.get(c.id));
    timers.delete(c.id);
    for (const w of waiters.get(c.id) ?? []) w(c);
    waiters.delete(c.id);
  };

  /** Forgets decided checks that admit nothing and that no destination should still be polling. */
  const sweep = () => {
    for (const [id, c] of ix.sshChecks) {
      if (c.state !== 'pending' && !admits(c) && nowMs() - Date.parse(c.decidedAt ?? c.createdAt) > decidedRetentionMs) ix.sshChecks.delete(id);
    }
  };

  const decide = (id: string, state: 'approved' | 'denied' | 'timeout', by: string | null): SshCheck => {
    const c = ix.sshChecks.get(id);
    if (!c) throw notFound(`no SSH check with id "${id}"`);
    if (c.state !== 'pending') throw conflict(`SSH check ${id} is already ${c.state === 'timeout' ? 'timed out' : c.state}`);
    const now = nowMs();
    const validUntil = state === 'approved' && c.periodMs > 0 ? new Date(now + c.periodMs).toISOString() : null;
    return save({ ...c, state, decidedAt: new Date(now).toISOString(), decidedBy: by, validUntil });
  };

  const arm = (c: SshCheck, delayMs = Math.max(0, Date.parse(c.deadline) - nowMs())) => {
    const timer = setTimeout(() => {
      timers.delete(c.id);
      if (ix.sshChecks.get(c.id)?.state !== 'pending') return;
      try {
        decide(c.id, 'timeout', null);
      } catch {
        arm(c, 5_000); // the store refused the write (busy disk): the check stays pending until it can be recorded
      }
    }, delayMs);
    timer.unref();
    timers.set(c.id, timer);
  };
  // Checks left pending by the last run stay pending (a restart approves nothing) and keep their deadline.
  for (const c of ix.sshChecks.values()) if (c.state === 'pending') arm(c);

  return {
    /** Records a new pending check; it times out after the configured timeout unless someone decides it. */
    start(input: NewSshCheck): SshCheck {
      sweep();
      const now = nowMs();
      const c = save({
        ...input,
        id: newCheckId(),
        state: 'pending',
        createdAt: new Date(now).toISOString(),
        deadline: new Date(now + opts.timeoutMs).toISOString(),
        decidedAt: null,
        decidedBy: null,
        validUntil: null,
      });
      arm(c);
      return c;
    },
    get: (id: string): SshCheck | undefined => ix.sshChecks.get(id),
    /** A check another replica committed (already in the indexes): its listeners and waiters here learn of it. */
    remoteChanged: settle,
    /** The approval that still admits sessions of this user to this node, if any. */
    approvalFor(srcUserId: number, dstNodeId: number): SshCheck | undefined {
      return [...ix.sshChecks.values()].find((c) => c.srcUserId === srcUserId && c.dstNodeId === dstNodeId && admits(c));
    },
    /** Pending checks and approvals still admitting sessions, oldest first. */
    list(): SshCheck[] {
      sweep();
      return [...ix.sshChecks.values()].filter((c) => c.state === 'pending' || admits(c));
    },
    /** Every check still held in memory (pending, and decided ones for an hour after), newest first. */
    recent(): SshCheck[] {
      sweep();
      return [...ix.sshChecks.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
    },
    /** Calls `listener` after every committed change (a new check, a decision, a timeout); returns the unsubscribe. */
    subscribe(listener: (c: SshCheck) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    approve: (id: string, by: string) => decide(id, 'approved', by),
    deny: (id: string, by: string) => decide(id, 'denied', by),
    /**
     * The check once it is decided, or as it is after `maxMs` (still pending) or when `signal` aborts: one
     * round of the destination node's long poll.
     */
    wait(id: string, maxMs: number, signal?: AbortSignal): Promise<SshCheck> {
      const c = ix.sshChecks.get(id);
      if (!c) return Promise.reject(notFound(`no SSH check with id "${id}"`));
      if (c.state !== 'pending') return Promise.resolve(c);
      return new Promise((resolve) => {
        const set = waiters.get(id) ?? new Set();
        waiters.set(id, set);
        const done = (x: SshCheck) => {
          clearTimeout(timer);
          set.delete(done);
          signal?.removeEventListener('abort', onAbort);
          resolve(x);
        };
        const onAbort = () => done(ix.sshChecks.get(id) ?? c);
        const timer = setTimeout(onAbort, maxMs); // the round is over: the caller answers "still pending"
        set.add(done);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    stop(): void {
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
  };
}

export type SshChecks = ReturnType<typeof createSshChecks>;
