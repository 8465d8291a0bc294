/**
 * Who is making the current change, carried down from the door to the state layer's single write path with
 * AsyncLocalStorage. An explicit parameter would have to thread through every state function (nodes, users,
 * keys, policy, DNS, SSH checks, batches) and every caller of them; the state API stays as it is, and a write
 * outside any door (timers, start-up) is recorded as `system`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Door } from './chain.ts';

export interface Actor {
  /** `apikey:<prefix>`, `oauth-client:<id>`, `user:<name>`, `node:<id>` or `system`; never a secret. */
  actor: string;
  door: Door;
  /**
   * Where the change came from: the caller's address, empty when there is none (timers), followed by the
   * revision it carries out when there is one (`127.0.0.1 git:<commit>`, see `fromRevision`).
   */
  source: string;
}

const als = new AsyncLocalStorage<Actor>();

const system: Actor = Object.freeze({ actor: 'system', door: 'system', source: '' }) as Actor;

/** The actor of the change being made now. */
export const currentActor = (): Actor => als.getStore() ?? system;

/** Runs `fn` (and everything it starts) as `actor`; the object may be filled in later, e.g. once authenticated. */
export const runAs = <T>(actor: Actor, fn: () => T): T => als.run(actor, fn);

/**
 * Runs `fn` as the current actor acting for a revision of a desired state (`git:<commit>`): every entry its
 * writes append names the revision after the caller's address, so a sync round's changes point at their commit;
 * without a revision `fn` just runs.
 */
export const fromRevision = <T>(ref: string | undefined, fn: () => T): T => {
  if (ref === undefined) return fn();
  const who = currentActor();
  return runAs({ ...who, source: who.source ? `${who.source} ${ref}` : ref }, fn);
};

/** Names the caller of the current request once its credentials are known. */
export function identify(actor: string): void {
  const a = als.getStore();
  if (a) a.actor = actor;
}
