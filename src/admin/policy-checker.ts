/** The admin API's policy checker: the policy engine's full check (syntax, references, `tests`) against the live tailnet. */
import { checkPolicy } from '../policy/index.ts';
import { topologyOf } from '../state/policy-view.ts';
import type { Tailnet } from '../state/tailnet.ts';

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
