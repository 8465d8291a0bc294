/**
 * Tags checked against the live policy's `tagOwners`, as Tailscale does, for every door that gives a node a tag
 * (admin API, CLI, engine, Terraform provider, registration): a tag must be defined there, and where a user
 * gives it (the user of a pre-auth key, or of a key or login with `--advertise-tags`) that user must own it.
 * An admin (the admin API's own edits) may give any defined tag. A refusal names the tag and the rule.
 */
import { compilePolicy, parsePolicy, type CompiledPolicy, type Policy } from '../policy/index.ts';
import type { PolicyRecord } from '../domain/types.ts';
import { invalid } from './errors.ts';
import type { Users } from './users.ts';
import { policyUsers } from './policy-view.ts';

/** The name policy positions are quoted with, as the admin API's policy errors do. */
const policyFile = 'policy.hujson';

export function createTagOwners(policy: () => PolicyRecord | null, users: Users, idpGroupsInPolicy: boolean) {
  let parsed: { text: string; policy: Policy } | undefined;
  /** The policy with a users-only topology: enough to resolve owners (users by name or e-mail, groups). */
  const compiled = (text: string): CompiledPolicy => {
    if (parsed?.text !== text) parsed = { text, policy: parsePolicy(text, policyFile) };
    const topology = { users: policyUsers(users.list(), idpGroupsInPolicy), nodes: [] };
    return compilePolicy(parsed.policy, topology);
  };

  /** Why these tags may not be given (by `user`, or by an admin when undefined); undefined when they may. */
  function refusal(tags: readonly string[], user?: string): string | undefined {
    if (tags.length === 0) return undefined;
    const text = policy()?.text ?? '';
    if (text.trim() === '') return `tag "${tags[0]}" is not defined: no policy is set, and tags must be declared in its tagOwners`;
    const c = compiled(text);
    for (const tag of tags) {
      const rule = c.policy.tagOwners.get(tag);
      if (!rule) {
        const known = [...c.policy.tagOwners.keys()];
        return `tag "${tag}" is not defined in the policy's tagOwners (defined: ${known.length ? known.join(', ') : 'none'})`;
      }
      if (user === undefined) continue;
      const who = { user, tags: [], ips: [] };
      if (!rule.members.some((m) => c.resolver.matches(m, who))) {
        const owners = rule.members.map((m) => m.text).join(', ') || 'nobody';
        return `user "${user}" does not own tag "${tag}": its tagOwners rule at ${policyFile}:${rule.pos.line}:${rule.pos.col} allows ${owners}`;
      }
    }
    return undefined;
  }

  return {
    refusal,
    /** Throws an invalid-input error naming the tag and the rule, unless every tag may be given. */
    check(tags: readonly string[], user?: string): void {
      const why = refusal(tags, user);
      if (why) throw invalid(why);
    },
  };
}

export type TagOwners = ReturnType<typeof createTagOwners>;
