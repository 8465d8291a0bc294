/**
 * The one way a door replaces the policy: optimistic concurrency by ETag (`If-Match`, 412 on a stale tag),
 * then the policy engine's full check against the live tailnet, then one write. API v1, API v2 and the
 * console share it, so none of them overwrites another's edit unseen.
 */
import { createHash } from 'node:crypto';
import type { PolicyRecord } from '../domain/types.ts';
import { allowAllPolicy } from '../state/policy-view.ts';
import type { Tailnet } from '../state/tailnet.ts';
import { assertValidPolicy, type PolicyChecker } from './policy-checker.ts';

/** Tailscale's If-Match value for "the policy nobody has set yet". */
export const defaultPolicyTag = 'ts-default';

/** The live policy text; Tailscale's default (allow all) while none was ever set. */
export const livePolicyText = (t: Tailnet): string => t.policy()?.text ?? allowAllPolicy;

/** The quoted ETag of the live policy: a hash of its exact text. */
export function policyEtag(t: Tailnet): string {
  return `"${createHash('sha256').update(livePolicyText(t)).digest('hex').slice(0, 32)}"`;
}

/** True when an If-Match header (tags quoted or not, comma-separated, `*`, `ts-default`) names the live policy. */
export function ifMatchHolds(t: Tailnet, header: string): boolean {
  const live = policyEtag(t).slice(1, -1);
  return header
    .split(',')
    .map((tag) =>
      tag
        .trim()
        .replace(/^W\//, '')
        .replace(/^"(.*)"$/, '$1')
    )
    .some((tag) => tag === '*' || tag === live || (tag === defaultPolicyTag && t.policy() === null));
}

/** Throws 412 unless `ifMatch` (when given) still names the live policy. */
export function assertIfMatch(t: Tailnet, ifMatch: string | undefined): void {
  if (ifMatch === undefined || ifMatchHolds(t, ifMatch)) return;
  throw Object.assign(new Error('the policy was changed since you read it (If-Match does not match its ETag): read it again and retry'), {
    statusCode: 412,
  });
}

/** Replaces the policy if `ifMatch` (when given) still names the live one and the new text passes every check. */
export function writePolicy(t: Tailnet, checker: PolicyChecker, text: string, ifMatch: string | undefined): PolicyRecord {
  assertIfMatch(t, ifMatch);
  assertValidPolicy(checker, text);
  return t.setPolicy(text);
}
