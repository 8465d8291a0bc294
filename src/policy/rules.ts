/** ACLs and grants resolved against a topology once, and reduced per node to the FilterRules that node enforces. */
import { containsIp, formatIp, overlaps, type Prefix } from '../net/ip.ts';
import { INTERNET_RANGES, isInternetRange, TAILNET_SOURCE_RANGES } from './addresses.ts';
import { principalOf, type Resolver } from './resolve.ts';
import type { ChangedNode, IndexedNode, TopologyIndex } from './topology.ts';
import type { RuleIndex } from './rule-index.ts';
import type { AccessRule, Alias, IpSpec } from './types.ts';
import type { CapGrant, FilterRule, NetPortRange } from './wire.ts';

/** A rule's sources: `all` for "*" / danger-all; `ids` are every node the sources cover (for peers and tests). */
export interface SrcSet {
  readonly all: boolean;
  readonly ids: ReadonlySet<number>;
  /** SrcIPs as sent to clients, shared by rules with identical sources. */
  readonly srcIPs: readonly string[];
  readonly key: string;
}

export type DstTarget =
  | { readonly kind: 'any' }
  | { readonly kind: 'nodes'; readonly ids: ReadonlySet<number> }
  | { readonly kind: 'prefix'; readonly prefixes: readonly Prefix[] }
  | { readonly kind: 'internet' }
  | { readonly kind: 'self' };

export interface CompiledDst {
  readonly alias: Alias;
  readonly target: DstTarget;
  readonly specs: readonly IpSpec[];
}

export interface CompiledRule {
  readonly rule: AccessRule;
  readonly src: SrcSet;
  readonly dsts: readonly CompiledDst[];
  /** Tags of the routers this grant is routed through (`via`); empty for ordinary rules. */
  readonly via: readonly string[];
}

/**
 * A rule's own source addresses (nodes' and literal prefixes), sorted, kept between compiles of the same parsed
 * policy: when the rule covers the same index entries as last time (see TopologyCache), they are not sorted again.
 */
export type SourceCache = WeakMap<AccessRule, OwnSources & { readonly nodes: ReadonlyMap<number, IndexedNode> }>;

/** A rule's own sources and their key (joined with commas). */
interface OwnSources {
  readonly own: readonly string[];
  readonly key: string;
}

/** The last compile's rules (same parsed policy, same users) and the nodes that changed since, in the index's entries. */
export interface RuleReuse {
  readonly rules: readonly CompiledRule[];
  readonly changed: readonly ChangedNode[];
  /** Positions of the rules those changes may touch (see RuleIndex): the others are not checked node by node. */
  readonly touched: ReadonlySet<number>;
}

/** Past this many changed nodes, checking every rule against each costs more than compiling the rules again. */
const maxReuseChanges = 256;

export function compileRules(rules: readonly AccessRule[], r: Resolver, cache?: SourceCache, reuse?: RuleReuse): CompiledRule[] {
  const sources = sourceContext(r);
  const canReuse = reuse !== undefined && reuse.changed.length <= maxReuseChanges;
  return rules.map((rule, i) => {
    const before = canReuse ? reuse.rules[i] : undefined;
    if (before?.rule === rule && indexedRule(before) && (!reuse!.touched.has(i) || unchangedBy(before, reuse!.changed, r))) return before;
    const src = sourceSet(rule, sources, cache);
    const dsts = rule.dst.map((d) => ({ alias: d.alias, target: target(d.alias, r), specs: d.specs }));
    return { rule, src, dsts, via: rule.via.map((v) => v.text) };
  });
}

/** What one compile's rules share to sort their sources: the resolver, interned SrcIPs lists, the approved routes. */
interface SourceContext {
  readonly r: Resolver;
  readonly interned: Map<string, readonly string[]>;
  /** Computed on first use. */
  readonly routes: () => readonly string[];
}

/**
 * A function of its own so that its closure holds the resolver only. A closure made in compileRules would hold
 * that scope's `reuse`, the previous compile's rules, and a rule carried over holds it until it sorts its
 * sources (a rule no filter reads never does): every compile since the start stayed reachable, 600 compiles'
 * filter plans and most of a 10,000-node server's 1 GB heap after a mass connect.
 */
function sourceContext(r: Resolver): SourceContext {
  let routes: readonly string[] | undefined;
  return { r, interned: new Map(), routes: () => (routes ??= approvedSubnetRoutes(r.topo)) };
}

const identityRules = new WeakMap<readonly CompiledRule[], boolean>();

/**
 * When every rule's sources and destinations are tags, users, groups or autogroup:self (and none is routed
 * `via`), which rules cover a node depends only on its owner and tags: nodes alike in those (a block of
 * the same user's or tag's nodes) can share that work. Undefined when some rule looks at more (addresses, routes).
 */
export function identityKeyer(rules: readonly CompiledRule[]): ((n: IndexedNode) => string) | undefined {
  let ok = identityRules.get(rules);
  if (ok === undefined) {
    ok = rules.every(indexedRule);
    identityRules.set(rules, ok);
  }
  return ok ? identityKey : undefined;
}

const identityKey = (n: IndexedNode) => `${n.user ?? ''}|${n.tags.join(',')}`;

/** Aliases whose node sets come from the index alone (tags, users, groups): a node outside them cannot change them. */
const indexedAlias = (a: Alias) => a.kind === 'tag' || a.kind === 'user' || a.kind === 'group';

/** A rule whose sources and destinations are all indexed aliases (or autogroup:self, resolved per node), not routed `via`. */
const indexedRule = (cr: CompiledRule) =>
  cr.via.length === 0 && cr.rule.src.every(indexedAlias) && cr.dsts.every((d) => d.target.kind === 'self' || (d.target.kind === 'nodes' && indexedAlias(d.alias)));

/**
 * Whether a compiled rule still holds after these node changes: its sources and destinations name only tags,
 * users, groups (or autogroup:self, resolved per node), and no changed node was in them or now matches them.
 * A join then compiles its block's rules again, not the whole policy's member sets.
 */
function unchangedBy(cr: CompiledRule, changed: readonly ChangedNode[], r: Resolver): boolean {
  for (const c of changed) {
    if (c.old && (cr.src.ids.has(c.id) || cr.dsts.some((d) => d.target.kind === 'nodes' && d.target.ids.has(c.id)))) return false;
    if (!c.new) continue;
    const p = principalOf(c.new);
    if (cr.rule.src.some((a) => r.matches(a, p)) || cr.dsts.some((d) => d.target.kind === 'nodes' && r.matches(d.alias, p))) return false;
  }
  return true;
}

/** Every approved subnet route in the tailnet, once each, in address order: Tailscale adds them to a `*` source. */
function approvedSubnetRoutes(topo: TopologyIndex): string[] {
  const seen = new Map<string, Prefix>();
  for (const n of topo.nodes) for (const p of n.subnetRoutes) seen.set(prefixText(p), p);
  return [...seen.entries()].sort(([, a], [, b]) => Number(a.v6) - Number(b.v6) || cmpBig(a.lo, b.lo) || a.bits - b.bits).map(([t]) => t);
}

const cmpBig = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * SrcIPs as Tailscale writes them: `*` is the tailnet's address ranges plus every approved subnet route (not "*",
 * which would admit any address that reaches the node); only autogroup:danger-all is "*". Other sources next to
 * a `*` keep their own addresses, as Tailscale lists them.
 */
function sourceSet(rule: AccessRule, context: SourceContext, cache?: SourceCache): SrcSet {
  const { r } = context;
  const aliases = rule.src;
  const all = aliases.some((a) => r.nodes(a).all);
  const dangerAll = aliases.some((a) => a.kind === 'autogroup' && a.name === 'danger-all');
  const wildcard = aliases.some((a) => a.kind === 'wildcard');
  const ids = new Set<number>();
  const ipIds = new Set<number>();
  const prefixes = new Set<string>();
  for (const a of aliases) {
    for (const id of r.nodes(a).ids) ids.add(id);
    const literal = r.prefixes(a);
    if (literal.length > 0) for (const p of literal) prefixes.add(prefixText(p));
    else for (const id of r.nodes(a).ids) ipIds.add(id);
  }
  // Sorted lazily: only nodes whose packet filter is (re)built read them, and after a small topology change
  // that is a few rules' destinations, not every rule in the policy. What sorting needs is dropped once done:
  // a rule lives on through later compiles, and would keep this compile's resolver and interned lists alive.
  let input: SourceContext | undefined = context;
  let ips: { srcIPs: readonly string[]; key: string } | undefined;
  const sorted = () => {
    if (!ips) {
      const { r, interned, routes } = input!;
      const { own, key: ownKey } = ownSources(rule, ipIds, prefixes, r, cache);
      const srcIPs = dangerAll ? ['*'] : wildcard ? [...new Set([...TAILNET_SOURCE_RANGES, ...routes(), ...own])] : own;
      const key = srcIPs === own ? ownKey : srcIPs.join(',');
      const shared = interned.get(key) ?? srcIPs;
      interned.set(key, shared);
      ips = { srcIPs: shared, key };
      input = undefined;
    }
    return ips;
  };
  return {
    all,
    ids,
    get srcIPs() {
      return sorted().srcIPs;
    },
    get key() {
      return sorted().key;
    },
  };
}

/** Sorted addresses of the source nodes, then the literal prefixes; from the cache when the nodes are the same entries. */
function ownSources(rule: AccessRule, ids: ReadonlySet<number>, prefixes: ReadonlySet<string>, r: Resolver, cache?: SourceCache): OwnSources {
  const hit = cache?.get(rule);
  if (hit && hit.nodes.size === ids.size && sameEntries(hit.nodes, ids, r)) return hit;
  const own = [...sortIps(ids, r), ...[...prefixes].sort()];
  const entry = { own, key: own.join(','), nodes: new Map([...ids].map((id) => [id, r.topo.byId.get(id)!])) };
  cache?.set(rule, entry);
  return entry;
}

function sameEntries(nodes: ReadonlyMap<number, IndexedNode>, ids: ReadonlySet<number>, r: Resolver): boolean {
  for (const id of ids) if (nodes.get(id) !== r.topo.byId.get(id)) return false;
  return true;
}

/** A policy without acls or grants allows everything, which Tailscale sends as `*` -> `*:*` with `*` expanded. */
export function allowAllFilter(r: Resolver): FilterRule[] {
  const SrcIPs = [...TAILNET_SOURCE_RANGES, ...approvedSubnetRoutes(r.topo)];
  return [{ SrcIPs, DstPorts: [{ IP: '*', Ports: { First: 0, Last: 65535 } }] }];
}

/** A prefix as clients get it: a bare address for a single host (Tailscale drops the /32 and /128). */
function prefixText(p: Prefix): string {
  const host = formatIp({ v6: p.v6, n: p.lo });
  return p.bits === (p.v6 ? 128 : 32) ? host : `${host}/${p.bits}`;
}

/** Node addresses, IPv4 before IPv6, each in numeric order (deterministic output). */
export function sortIps(ids: Iterable<number>, r: Resolver): string[] {
  const ips = [...ids].flatMap((id) => r.topo.byId.get(id)!.ips.map((ip, i) => ({ ip, text: r.topo.byId.get(id)!.ipTexts[i]! })));
  ips.sort((a, b) => Number(a.ip.v6) - Number(b.ip.v6) || cmpBig(a.ip.n, b.ip.n));
  return [...new Set(ips.map((x) => x.text))];
}

function target(a: Alias, r: Resolver): DstTarget {
  if (a.kind === 'wildcard') return { kind: 'any' };
  if (a.kind === 'autogroup' && a.name === 'internet') return { kind: 'internet' };
  if (a.kind === 'autogroup' && a.name === 'self') return { kind: 'self' };
  const prefixes = r.prefixes(a);
  return prefixes.length > 0 ? { kind: 'prefix', prefixes } : { kind: 'nodes', ids: r.nodes(a).ids };
}

/** Whether node n is a destination of this target (in its addresses, its approved routes, or as an exit node). */
export function targetHits(t: DstTarget, n: IndexedNode): boolean {
  switch (t.kind) {
    case 'any':
      return true;
    case 'nodes':
      return t.ids.has(n.id);
    case 'prefix':
      return t.prefixes.some((p) => prefixHits(p, n));
    case 'internet':
      return n.isExit;
    case 'self':
      return n.user !== undefined;
  }
}

/**
 * A literal prefix reaches a node that has an address in it or routes into it, and an exit node when the
 * prefix is public address space (Tailscale sends `8.8.8.8:53` to exit nodes as it sends autogroup:internet).
 */
function prefixHits(p: Prefix, n: IndexedNode): boolean {
  if (n.ips.some((ip) => containsIp(p, ip)) || n.subnetRoutes.some((s) => overlaps(s, p))) return true;
  return n.isExit && isInternetRange(p);
}

/** One array for every `*` destination, so its DstPorts entries are built once (dstPorts). */
const anyIps: readonly string[] = ['*'];

/** The addresses of node n that a target covers, as FilterRule destination IPs. */
function targetIps(t: DstTarget, n: IndexedNode): readonly string[] {
  switch (t.kind) {
    case 'any':
      return anyIps;
    case 'nodes':
    case 'self':
      return n.ipTexts;
    case 'prefix':
      return t.prefixes.filter((p) => prefixHits(p, n)).map(prefixText);
    case 'internet':
      return INTERNET_RANGES;
  }
}

/** Sources of an autogroup:self rule for a node owned by `user`: that user's own (untagged) nodes among the rule's sources. */
export type SelfSources = (rule: CompiledRule, user: string) => readonly string[];

export function selfSourcesCache(r: Resolver): SelfSources {
  const cache = new Map<CompiledRule, Map<string, readonly string[]>>();
  return (rule, user) => {
    let perUser = cache.get(rule);
    if (!perUser) cache.set(rule, (perUser = new Map()));
    let ips = perUser.get(user);
    if (!ips) {
      const own = (r.topo.byUser.get(user) ?? []).filter((n) => rule.src.all || rule.src.ids.has(n.id));
      ips = sortIps(own.map((n) => n.id), r);
      perUser.set(user, ips);
    }
    return ips;
  };
}

const protoKey = (s: IpSpec) => (s.protos ? s.protos.join(',') : '');

/**
 * Capabilities Tailscale pairs with a companion that goes back to the grant's sources (tailscale/tailscale
 * tailcfg/peercap/peercap.go: drive -> drive-sharer, relay -> relay-target; headscale
 * hscontrol/policy/v2/filter.go companionCaps), in that order.
 */
const COMPANION_CAPS: readonly (readonly [string, string])[] = [
  ['tailscale.com/cap/drive', 'tailscale.com/cap/drive-sharer'],
  ['tailscale.com/cap/relay', 'tailscale.com/cap/relay-target'],
];

/**
 * The packet filter for one node, in Tailscale's order. Tailscale compiles the whole tailnet's rules first
 * (grants before ACLs; within an ACL its ordinary destinations before autogroup:self unless all are autogroups),
 * merges DstPorts rules with the same SrcIPs and protocols into the first one, and only then keeps what each
 * node enforces: so a merged rule sits where its first rule anywhere in the policy was, even one for another node.
 * CapGrant rules never merge and stay where their grant put them. `index` (of the policy the rules were compiled
 * from) narrows which rules are looked at for a node, not what its filter holds.
 */
export function filterForNode(rules: readonly CompiledRule[], n: IndexedNode, selfSources: SelfSources, r: Resolver, index?: RuleIndex): FilterRule[] {
  const plan = filterPlan(rules);
  return plan ? plannedFilter(plan, n, selfSources, index) : walkedFilter(rules, n, selfSources, r);
}

/** One step of filterPlan: a destination and port spec of a rule, or a rule's autogroup:self part. */
type PlanStep =
  | { readonly self: false; readonly rule: CompiledRule; readonly d: CompiledDst; readonly spec: IpSpec; readonly key: string; readonly at: number }
  | { readonly self: true; readonly part: readonly CompiledDst[]; readonly rule: CompiledRule; readonly width: number; readonly at: number };

interface FilterPlan {
  readonly steps: readonly PlanStep[];
  /** The steps of each rule, by its position in the compiled rules. */
  readonly byRule: readonly (readonly PlanStep[])[];
  /** With rules that look only at who a node is (identityKeyer), the steps that concern a node, per identity. */
  readonly identity?: (n: IndexedNode) => string;
  readonly stepsOf: Map<string, readonly PlanStep[]>;
  /** Where the first rule of each SrcIPs|protocols key stands in the walk: its merged FilterRule's place in every filter. */
  readonly firstAt: ReadonlyMap<string, number>;
}

const filterPlans = new WeakMap<readonly CompiledRule[], FilterPlan | null>();

/** A rule's steps before they are given their places (PlanStep without `at`; a self part's width instead). */
type RuleStep =
  | { readonly self: false; readonly rule: CompiledRule; readonly d: CompiledDst; readonly spec: IpSpec; readonly key: string }
  | { readonly self: true; readonly part: readonly CompiledDst[]; readonly rule: CompiledRule; readonly width: number };

/**
 * Each rule's steps, kept with the rule: a compile carries unchanged rules over as the same objects, so a plan
 * only places their steps again. Building them (the destination parts, and a merge key that embeds the rule's
 * whole SrcIPs text) for every rule of every compile was a second of a 10,000-node mass connect.
 */
const ruleSteps = new WeakMap<CompiledRule, readonly RuleStep[]>();

function stepsOf(rule: CompiledRule): readonly RuleStep[] {
  let steps = ruleSteps.get(rule);
  if (steps) return steps;
  const out: RuleStep[] = [];
  for (const part of dstParts(rule)) {
    if (part[0]!.target.kind === 'self') {
      // Each of a self part's destinations and specs may open a slot of its own (keys vary by node).
      out.push({ self: true, part, rule, width: part.reduce((k, d) => k + d.specs.length, 0) });
      continue;
    }
    const empty = rule.src.srcIPs.length === 0;
    for (const [d, spec] of partPairs(rule, part)) out.push({ self: false, rule, d, spec, key: empty ? '' : `${rule.src.key}|${protoKey(spec)}` });
  }
  ruleSteps.set(rule, (steps = out));
  return steps;
}

/**
 * walkedFilter's walk without the node: the order of the rules' parts, their merge keys, and where each key's
 * merged rule stands. A compile builds it once, so a node's filter costs a look at each destination rather than
 * building every rule's slot again (a join recomputes its whole block's filters). Grants with `via` or `app`
 * depend on the node in other ways: those policies keep the plain walk (null).
 */
function filterPlan(rules: readonly CompiledRule[]): FilterPlan | null {
  let plan = filterPlans.get(rules);
  if (plan !== undefined) return plan;
  plan = null;
  if (rules.every((c) => c.via.length === 0 && !c.rule.app)) {
    const steps: PlanStep[] = [];
    const byRule: PlanStep[][] = rules.map(() => []);
    const firstAt = new Map<string, number>();
    let at = 0;
    for (const i of orderedPositions(rules)) {
      const own = byRule[i]!;
      for (const step of stepsOf(rules[i]!)) {
        let placed: PlanStep;
        if (step.self) {
          placed = { ...step, at };
          at += step.width;
        } else {
          if (step.key !== '' && !firstAt.has(step.key)) firstAt.set(step.key, at);
          placed = { ...step, at: at++ };
        }
        steps.push(placed);
        own.push(placed);
      }
    }
    plan = { steps, byRule, firstAt, identity: identityKeyer(rules), stepsOf: new Map() };
  }
  filterPlans.set(rules, plan);
  return plan;
}

/**
 * A node's DstPorts entries for one port spec, by its address list and the spec (both kept across compiles of
 * the same policy while the node is unchanged): a compile that moves a rule's sources (a join, a logout) builds
 * every filter of its destinations again, and these entries, the bulk of each, were built anew every time.
 */
const portEntries = new WeakMap<readonly string[], WeakMap<IpSpec, readonly NetPortRange[]>>();

function dstPorts(ips: readonly string[], spec: IpSpec): readonly NetPortRange[] {
  let bySpec = portEntries.get(ips);
  if (!bySpec) portEntries.set(ips, (bySpec = new WeakMap()));
  let entries = bySpec.get(spec);
  if (!entries) bySpec.set(spec, (entries = ips.flatMap((ip) => spec.ports.map((p) => ({ IP: ip, Ports: { First: p.first, Last: p.last } })))));
  return entries;
}

/** walkedFilter's result from a plan: only the destinations that cover n add ports, each to its key's place. */
function plannedFilter(plan: FilterPlan, n: IndexedNode, selfSources: SelfSources, index?: RuleIndex): FilterRule[] {
  type Slot = { at: number; srcIPs: readonly string[]; protos: readonly number[] | undefined; ports: (readonly NetPortRange[])[] };
  const slots = new Map<string, Slot>();
  const add = (srcIPs: readonly string[], key: string, at: number, spec: IpSpec, ips: readonly string[]) => {
    let slot = slots.get(key);
    if (!slot) slots.set(key, (slot = { at, srcIPs, protos: spec.protos, ports: [] }));
    slot.ports.push(dstPorts(ips, spec));
  };
  let steps = plan.steps;
  if (plan.identity) {
    const id = plan.identity(n);
    const known = plan.stepsOf.get(id);
    if (known) steps = known;
    else {
      // Only the rules that name n's tags, owner or its groups can hold it (rule-index.ts): looking at every
      // step for every identity was quadratic in the tailnet with rules per team (50,000 nodes: 1,000
      // identities by 1,500 rules, each compile).
      const candidates = index ? index.rulesOf(n).flatMap((i) => plan.byRule[i]!).sort((a, b) => a.at - b.at) : steps;
      plan.stepsOf.set(id, (steps = candidates.filter((step) => step.self || (step.key !== '' && targetHits(step.d.target, n)))));
    }
  }
  for (const step of steps) {
    if (!step.self) {
      if (step.key !== '' && targetHits(step.d.target, n)) add(step.rule.src.srcIPs, step.key, plan.firstAt.get(step.key)!, step.spec, targetIps(step.d.target, n));
      continue;
    }
    if (n.user === undefined) continue;
    const own = selfSources(step.rule, n.user);
    if (own.length === 0) continue;
    let at = step.at;
    for (const d of step.part) {
      for (const spec of d.specs) {
        const key = `${own.join(',')}|${protoKey(spec)}`;
        // The slot opened first: by an ordinary rule before this part, or here.
        add(own, key, Math.min(plan.firstAt.get(key) ?? Infinity, at++), spec, n.ipTexts);
      }
    }
  }
  // A slot of one spec, the usual case, holds the kept list itself: the same array across compiles.
  const ruleOf = (s: Slot) => ({ SrcIPs: s.srcIPs, DstPorts: s.ports.length === 1 ? s.ports[0]! : s.ports.flat(), ...(s.protos ? { IPProto: s.protos } : {}) });
  return [...slots.values()].sort((a, b) => a.at - b.at).map(ruleOf).filter((fr) => fr.DstPorts.length > 0);
}

/** Grants before ACLs, each in policy order. */
const orderedPositions = (rules: readonly CompiledRule[]) => {
  const of = (source: string) => [...rules.keys()].filter((i) => rules[i]!.rule.source === source);
  return [...of('grants'), ...of('acls')];
};
const orderedRules = (rules: readonly CompiledRule[]) => orderedPositions(rules).map((i) => rules[i]!);

/** A part's destinations with their port specs: a grant's `ip` list applies to every destination, so Tailscale emits one rule per protocol entry. */
const partPairs = (rule: CompiledRule, part: readonly CompiledDst[]) =>
  rule.rule.source === 'grants' ? part[0]!.specs.flatMap((spec) => part.map((d) => [d, spec] as const)) : part.flatMap((d) => d.specs.map((spec) => [d, spec] as const));

/** filterForNode by walking every rule for the node. */
function walkedFilter(rules: readonly CompiledRule[], n: IndexedNode, selfSources: SelfSources, r: Resolver): FilterRule[] {
  const out: FilterRule[] = [];
  const byKey = new Map<string, { DstPorts: NetPortRange[] }>();
  const slot = (srcIPs: readonly string[], srcKey: string, spec: IpSpec) => {
    const key = `${srcKey}|${protoKey(spec)}`;
    let fr = byKey.get(key);
    if (!fr) {
      const rule = { SrcIPs: srcIPs, DstPorts: [] as NetPortRange[], ...(spec.protos ? { IPProto: spec.protos } : {}) };
      byKey.set(key, rule);
      out.push(rule);
      fr = rule;
    }
    return fr;
  };
  const add = (srcIPs: readonly string[], srcKey: string, spec: IpSpec, ips: readonly string[]) => {
    if (srcIPs.length === 0) return;
    const fr = slot(srcIPs, srcKey, spec);
    fr.DstPorts.push(...dstPorts(ips, spec));
  };
  for (const rule of orderedRules(rules)) {
    const routed = rule.via.length === 0 || rule.via.some((t) => n.tags.includes(t));
    for (const part of dstParts(rule)) {
      if (part[0]!.target.kind !== 'self') {
        if (!routed) continue;
        for (const [d, spec] of partPairs(rule, part)) {
          const hit = targetHits(d.target, n) && !(rule.via.length > 0 && (d.target.kind === 'nodes' || d.target.kind === 'any'));
          add(rule.src.srcIPs, rule.src.key, spec, hit ? targetIps(d.target, n) : []);
        }
        if (rule.rule.app && rule.via.length === 0 && rule.src.srcIPs.length > 0) out.push(...capRules(rule, part, n, rule.src.srcIPs, srcHosts(rule, n), r));
        continue;
      }
      if (n.user === undefined) continue;
      const own = selfSources(rule, n.user);
      for (const d of part) for (const spec of d.specs) add(own, own.join(','), spec, n.ipTexts);
      if (rule.rule.app && own.length > 0) out.push(...capRules(rule, part, n, own, own.includes(n.ipTexts[0] ?? '') ? hosts(n) : [], r));
    }
  }
  return out.filter((fr) => fr.CapGrant !== undefined || fr.DstPorts!.length > 0);
}

/** A rule's destinations in Tailscale's compile order: groups of ordinary ones and autogroup:self ones. */
function dstParts(rule: CompiledRule): CompiledDst[][] {
  const isSelf = (d: CompiledDst) => d.target.kind === 'self';
  if (rule.rule.source === 'acls' && rule.dsts.every((d) => d.alias.kind === 'autogroup')) return rule.dsts.map((d) => [d]);
  return [rule.dsts.filter((d) => !isSelf(d)), rule.dsts.filter(isSelf)].filter((p) => p.length > 0);
}

const hosts = (n: IndexedNode) => n.ipTexts.map((ip) => (ip.includes(':') ? `${ip}/128` : `${ip}/32`));

/** This node's addresses as CapGrant Dsts of a companion rule, when the node is one of the rule's sources. */
const srcHosts = (rule: CompiledRule, n: IndexedNode) => (rule.src.all || rule.src.ids.has(n.id) ? hosts(n) : []);

/**
 * A grant's `app` capabilities for node n: one CapGrant per destination that covers n, whose Dsts are n's own
 * addresses (a routed prefix stays whole on its router), then the companion rules that hand drive-sharer /
 * relay-target back to n when n is a source (SrcIPs: the grant's destinations; Dsts: n's addresses).
 */
function capRules(rule: CompiledRule, dsts: readonly CompiledDst[], n: IndexedNode, srcIPs: readonly string[], asSource: readonly string[], r: Resolver): FilterRule[] {
  const out: FilterRule[] = [];
  const grants: CapGrant[] = [];
  const app = rule.rule.app!;
  for (const d of dsts) {
    if (!targetHits(d.target, n) || d.target.kind === 'internet') continue;
    const own = d.target.kind === 'prefix' ? hosts(n).filter((_, i) => d.target.kind === 'prefix' && d.target.prefixes.some((p) => containsIp(p, n.ips[i]!))) : hosts(n);
    const routed = d.target.kind === 'prefix' ? d.target.prefixes.filter((p) => n.subnetRoutes.some((s) => overlaps(s, p))).map((p) => p.text) : [];
    if (own.length + routed.length > 0) grants.push({ Dsts: [...own, ...routed], CapMap: app });
  }
  if (grants.length > 0) out.push({ SrcIPs: srcIPs, CapGrant: grants });
  const companions = COMPANION_CAPS.filter(([cap]) => cap in app);
  if (companions.length === 0 || asSource.length === 0) return out;
  const dstIPs = [...new Set(dsts.flatMap((d) => destinationIps(d.target, n, r)))];
  if (dstIPs.length === 0) return out;
  for (const [, companion] of companions) out.push({ SrcIPs: dstIPs, CapGrant: [{ Dsts: asSource, CapMap: { [companion]: null } }] });
  return out;
}

/** Every address a destination stands for, tailnet-wide (autogroup:self: n's user's nodes), as companion SrcIPs. */
function destinationIps(t: DstTarget, n: IndexedNode, r: Resolver): string[] {
  switch (t.kind) {
    case 'any':
      return [...TAILNET_SOURCE_RANGES, ...approvedSubnetRoutes(r.topo)];
    case 'nodes':
      return sortIps(t.ids, r);
    case 'self':
      return sortIps((r.topo.byUser.get(n.user ?? '') ?? []).map((m) => m.id), r);
    case 'prefix':
      return t.prefixes.map(prefixText);
    case 'internet':
      return [];
  }
}
