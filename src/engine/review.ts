/**
 * A planned policy change reviewed by the policy engine against the tailnet as it will be after the apply: its
 * problems (syntax, references, failing tests) and the access it grants or takes away.
 */
import { checkPolicy, diffAccess, parsePolicy, type AccessChange, type PolicyError, type Topology } from '../policy/index.ts';
import type { ApiNode } from '../domain/api.ts';
import type { DesiredNode, DesiredState } from './desired.ts';
import type { LiveState } from './live.ts';
import { normalizeRoutes } from '../domain/routes.ts';

export interface PolicyReview {
  /** Every problem the policy engine finds, `file:line:col: detail` each; empty when the policy is valid. */
  readonly problems: readonly string[];
  /** Who gains and loses access; undefined when either side does not parse. */
  readonly accessDiff?: readonly AccessChange[];
}

/** Live users plus declared ones, and live nodes with their declared tags, routes and names applied. */
export function projectedTopology(live: LiveState, desired: DesiredState, pairs: readonly { desired: DesiredNode; live: ApiNode }[]): Topology {
  const liveUsers = live.users.map((u) => ({ id: Number(u.id), name: u.name, email: u.email || undefined }));
  const known = new Set(liveUsers.map((u) => u.name));
  const newUsers = (desired.users ?? []).filter((u) => !known.has(u.name));
  const declared = new Map(pairs.map((p) => [p.live.id, p.desired]));
  return {
    users: [...liveUsers, ...newUsers.map((u, i) => ({ id: -1 - i, name: u.name, email: u.email }))],
    nodes: live.nodes.map((n) => {
      const d = declared.get(n.id);
      const tags = d?.tags ?? n.tags;
      return {
        id: Number(n.id),
        name: d?.givenName ?? n.givenName,
        user: tags.length > 0 ? undefined : n.user?.name,
        tags,
        ipv4: n.ipAddresses.find((a) => !a.includes(':')) ?? '',
        ipv6: n.ipAddresses.find((a) => a.includes(':')) ?? '',
        approvedRoutes: d?.approvedRoutes ? normalizeRoutes(d.approvedRoutes) : n.approvedRoutes,
      };
    }),
  };
}

/** `describe` words each problem (by default `policy:line:col: detail`, positions in the generated text). */
export function reviewPolicy(liveText: string, desiredText: string, topology: Topology, describe = (e: PolicyError) => e.message): PolicyReview {
  const problems = checkPolicy(desiredText, 'policy', topology).map(describe);
  if (problems.length > 0) return { problems };
  try {
    const before = parsePolicy(liveText.trim() === '' ? '{}' : liveText, 'live policy');
    return { problems, accessDiff: diffAccess(before, parsePolicy(desiredText, 'policy'), topology) };
  } catch {
    return { problems };
  }
}
