/** Check mode on the server side: which "check" rule holds a session, so its approval lasts the rule's checkPeriod. */
import type { CompiledPolicy } from './compile.ts';
import { principalOf } from './resolve.ts';
import { acceptAction, DEFAULT_CHECK_PERIOD_MS, sshDecision } from './ssh.ts';
import type { SshAction } from './wire.ts';

export interface HeldBy {
  /** How long an approval admits later sessions of the same user to the same node; 0 = this session only. */
  readonly periodMs: number;
  /** What the session gets once approved: what an accept rule sends. */
  readonly accept: SshAction;
}

/**
 * The check rule that decides `src` ssh-ing to `dst` as `login` under the live policy, or undefined when the
 * policy (first match wins, as on the client) accepts or denies that session outright.
 */
export function heldBy(c: CompiledPolicy, srcId: number, dstId: number, login: string): HeldBy | undefined {
  const src = c.topology.byId.get(srcId);
  const dst = c.topology.byId.get(dstId);
  if (!src || !dst) return undefined;
  const [s, d] = [principalOf(src), principalOf(dst)];
  if (c.sshDecision(s, d, login) !== 'check') return undefined;
  const rule = c.ssh.find((r) => r.rule.action === 'check' && sshDecision([r], c.resolver, s, d, login) === 'check');
  if (!rule) return undefined;
  return { periodMs: rule.rule.checkPeriodMs ?? DEFAULT_CHECK_PERIOD_MS, accept: acceptAction };
}
