/**
 * Which per-node views a topology change can alter. Between two compiles of the same policy for the same users,
 * a node's packet filter, SSH policy and peers change only if a changed node (added, removed or edited) sits on
 * the other side of a rule it is in: a changed source alters its destinations' filters and peers, a changed
 * destination its sources' peers. Everyone else keeps the view it had, so a join costs its block, not the tailnet.
 */
import type { Resolver } from './resolve.ts';
import { targetHits, type CompiledRule } from './rules.ts';
import type { CompiledSsh } from './ssh.ts';
import type { ChangedNode, IndexedNode, TopologyIndex, TopologyUser } from './topology.ts';
import type { Policy } from './types.ts';

/** The parts of a compile the comparison needs. */
export interface CompileParts {
  readonly policy: Policy;
  readonly topology: TopologyIndex;
  readonly resolver: Resolver;
  readonly rules: readonly CompiledRule[];
  readonly ssh: readonly CompiledSsh[];
}

/** Past this share of changed nodes, computing views afresh is cheaper than working out who is affected. */
const maxChangedShare = 0.25;

/**
 * Node ids whose views may differ from `prev`'s, or 'all' when nothing can be reused. `changed` and `touched`
 * (the positions of the rules the changes may touch, see RuleIndex) are undefined when the two compiles are not
 * comparable, or when the policy has no access rules: everyone sees everyone, so any change reaches every node.
 */
export function affectedNodes(prev: CompileParts, next: CompileParts, changed?: readonly ChangedNode[], touched?: ReadonlySet<number>): Set<number> | 'all' {
  if (!changed || !touched) return 'all';
  if (changed.length > maxChangedShare * Math.max(next.topology.nodes.length, 1)) return 'all';
  const out = new Set<number>(changed.map((c) => c.id));
  const addAll = (ids: Iterable<number>) => {
    for (const id of ids) out.add(id);
  };
  // autogroup:self pairs a user's own nodes only: a change there touches that user's nodes, old owner and new.
  const addOwnNodes = (c: ChangedNode) => {
    for (const user of [c.old?.user, c.new?.user]) if (user !== undefined) addAll((next.topology.byUser.get(user) ?? []).map((n) => n.id));
  };
  for (const i of touched) {
    const parts = touchedParts(prev.rules[i]!, next.rules[i]!, changed, addOwnNodes);
    const rule = next.rules[i]!;
    if (parts.sources) {
      if (rule.src.all) return 'all';
      addAll(rule.src.ids);
    }
    for (const j of parts.dsts) {
      const target = rule.dsts[j]!.target;
      if (target.kind === 'any') return 'all';
      if (target.kind === 'nodes') addAll(target.ids);
      else for (const n of next.topology.nodes) if (targetHits(target, n)) out.add(n.id);
    }
  }
  for (let i = 0; i < next.ssh.length; i++) {
    const [before, after] = [prev.ssh[i]!, next.ssh[i]!];
    for (const c of changed) {
      if (!before.srcIds.has(c.id) && !after.srcIds.has(c.id)) continue;
      // autogroup:self, and localpart rules (installed on the source users' own nodes too), reach the user's nodes.
      if (after.hasSelf || after.localpartDomains.length > 0) addOwnNodes(c);
      for (const a of after.dst) {
        const set = next.resolver.nodes(a);
        if (set.all) return 'all';
        addAll(set.ids);
      }
    }
  }
  return out;
}

/**
 * Which sides of one rule (before and after the change) must be told: its sources when a changed node is a
 * destination, a destination's members when a changed node is a source. `via` routers need no case of their
 * own: a router matters to a rule only where its routes hit the rule's destinations.
 */
function touchedParts(before: CompiledRule, after: CompiledRule, changed: readonly ChangedNode[], onSelf: (c: ChangedNode) => void) {
  let sources = false;
  const dsts = new Set<number>();
  for (const c of changed) {
    const inSrc = (c.old !== undefined && inSources(before, c.old)) || (c.new !== undefined && inSources(after, c.new));
    after.dsts.forEach((d, j) => {
      if (d.target.kind === 'self') {
        if (inSrc || c.old?.user !== undefined || c.new?.user !== undefined) onSelf(c);
        return;
      }
      const hit = (c.old !== undefined && targetHits(before.dsts[j]!.target, c.old)) || (c.new !== undefined && targetHits(d.target, c.new));
      if (hit) sources = true;
      if (inSrc) dsts.add(j);
    });
  }
  return { sources, dsts };
}

/** Whether two compiles are of the same parsed policy for the same users: only then can parts carry over. */
export const comparable = (prev: Pick<CompileParts, 'policy' | 'topology'>, next: Pick<CompileParts, 'policy' | 'topology'>) =>
  prev.policy === next.policy && sameUsers(prev.topology.users, next.topology.users);

/** Nodes added, removed or edited: an unchanged node keeps its index entry object (see TopologyCache). */
export function changedNodes(prev: TopologyIndex, next: TopologyIndex): ChangedNode[] {
  const out: ChangedNode[] = [];
  for (const n of next.nodes) {
    const old = prev.byId.get(n.id);
    if (old !== n) out.push({ id: n.id, old, new: n });
  }
  for (const n of prev.nodes) if (!next.byId.has(n.id)) out.push({ id: n.id, old: n });
  return out;
}

function sameUsers(a: readonly TopologyUser[], b: readonly TopologyUser[]): boolean {
  const sameGroups = (x: readonly string[] = [], y: readonly string[] = []) => x.length === y.length && x.every((g, i) => g === y[i]);
  return a === b || (a.length === b.length && a.every((u, i) => u.id === b[i]!.id && u.name === b[i]!.name && u.email === b[i]!.email && sameGroups(u.idpGroups, b[i]!.idpGroups)));
}

const inSources = (cr: CompiledRule, n: IndexedNode) => cr.src.all || cr.src.ids.has(n.id);
