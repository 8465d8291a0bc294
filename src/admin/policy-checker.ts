/**
 * The admin API's policy checker: the policy engine's full check (syntax, references, `tests`) against the live
 * tailnet, and the access diff of a proposed policy. The API routes and the console both go through here.
 */
import { checkPolicy, diffAccess, parsePolicy, PolicyError, renderAccessDiff, type AccessChange, type Policy } from '../policy/index.ts';
import { allowAllPolicy, topologyOf } from '../state/policy-view.ts';
import type { Tailnet } from '../state/tailnet.ts';
import { conflict, invalid } from '../state/errors.ts';

/** The name policy errors quote (`policy.hujson:12:7: ...`); the stored policy has no file of its own. */
export const policyFileName = 'policy.hujson';

/** Policy checks the admin API needs. */
export interface PolicyChecker {
  /** Every problem with the policy text (syntax with line:col, references, failing tests); empty when valid. */
  check(text: string): string[];
}

export function createPolicyChecker(t: Tailnet): PolicyChecker {
  return {
    // The topology is read per check, so the policy's tests see the nodes as they are now.
    check: (text) => checkPolicy(text, policyFileName, topologyOf(t)).map((e) => e.message),
  };
}

/** Throws an 'invalid' StateError listing every problem (one `policy.hujson:line:col: ...` per line). */
export function assertValidPolicy(policy: PolicyChecker, text: string): void {
  const errors = policy.check(text);
  if (errors.length > 0) throw invalid(`policy refused:\n${errors.join('\n')}`);
}

function parseOr(text: string, fail: (msg: string) => Error): Policy {
  try {
    return parsePolicy(text, policyFileName);
  } catch (err) {
    if (err instanceof PolicyError) throw fail(err.message);
    throw err;
  }
}

/** Who gains and who loses which access if `text` replaced the live policy, as data and as text. */
export function policyAccessDiff(t: Tailnet, text: string): { changes: AccessChange[]; text: string } {
  const proposed = parseOr(text, (m) => invalid(`invalid policy:\n${m}`));
  // A policy stored before validation was this strict can fail now; say so rather than answer 500.
  const live = parseOr(t.policy()?.text ?? allowAllPolicy, (m) => conflict(`the live policy does not validate:\n${m}`));
  const changes = diffAccess(live, proposed, topologyOf(t));
  return { changes, text: renderAccessDiff(changes) };
}
