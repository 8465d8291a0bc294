/**
 * Which rules a node can sit in, by who it is. A rule whose sources and destinations are tags, users, groups
 * (and autogroup:self among its destinations) holds a node only through one of those names, so a compile checks
 * a changed node against the rules that name its tags, its owner or a group of its owner, not against every rule:
 * the bench's 50,000 nodes in blocks of 100 have 1,500 rules, and a mass connect compiles hundreds of times.
 * Valid for one parsed policy and one set of users (group members and user aliases resolve through them).
 */
import type { Resolver } from './resolve.ts';
import type { ChangedNode, IndexedNode } from './topology.ts';
import type { AccessRule, Alias } from './types.ts';

export interface RuleIndex {
  /** Positions (ascending) of the rules this node may sit in, with every rule the index cannot narrow. */
  rulesOf(n: IndexedNode): number[];
  /** Positions (ascending) of the rules a change of these nodes may touch: rulesOf their old and new entries. */
  touchedBy(changed: readonly ChangedNode[]): number[];
}

const isSelf = (a: Alias) => a.kind === 'autogroup' && a.name === 'self';

/** The names under which a node can match an alias, or undefined when the alias looks at more than who it is. */
function keysOf(a: Alias, r: Resolver): string[] | undefined {
  if (a.kind === 'tag') return [`t:${a.name}`];
  if (a.kind === 'user') return [`u:${r.userName(a)}`];
  if (a.kind === 'group') return [...r.groupUsers(a.name)].map((u) => `u:${u}`);
  return undefined;
}

export function buildRuleIndex(rules: readonly AccessRule[], r: Resolver): RuleIndex {
  const byKey = new Map<string, number[]>();
  /** Rules with addresses, wildcards, autogroups or `via` routers: checked on every change. */
  const always: number[] = [];
  /** Rules with an autogroup:self destination: any change of an owned node may touch them. */
  const self: number[] = [];
  rules.forEach((rule, i) => {
    const dsts = rule.dst.map((d) => d.alias);
    const keys = [...rule.src, ...dsts.filter((a) => !isSelf(a))].map((a) => keysOf(a, r));
    if (rule.via.length > 0 || keys.some((k) => k === undefined)) return void always.push(i);
    if (dsts.some(isSelf)) self.push(i);
    for (const key of keys.flat() as string[]) {
      const at = byKey.get(key);
      if (!at) byKey.set(key, [i]);
      else if (at[at.length - 1] !== i) at.push(i);
    }
  });
  const collect = (nodes: (IndexedNode | undefined)[]) => {
    const out = new Set<number>(always);
    const addAll = (ids: readonly number[] | undefined) => ids?.forEach((i) => out.add(i));
    for (const n of nodes) {
      if (!n) continue;
      if (n.user !== undefined) {
        addAll(self);
        addAll(byKey.get(`u:${n.user}`));
      }
      for (const t of n.tags) addAll(byKey.get(`t:${t}`));
    }
    return [...out].sort((a, b) => a - b);
  };
  return {
    rulesOf: (n) => collect([n]),
    touchedBy: (changed) => collect(changed.flatMap((c) => [c.old, c.new])),
  };
}
