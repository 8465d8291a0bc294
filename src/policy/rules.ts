/** ACLs and grants resolved against a topology once, and reduced per node to the FilterRules that node enforces. */
import { containsIp, overlaps, type Prefix } from '../net/ip.ts';
import { INTERNET_PREFIXES } from './internet.ts';
import type { Resolver } from './resolve.ts';
import type { IndexedNode } from './topology.ts';
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

export function compileRules(rules: readonly AccessRule[], r: Resolver): CompiledRule[] {
  const interned = new Map<string, readonly string[]>();
  return rules.map((rule) => {
    const src = sourceSet(rule.src, r, interned);
    const dsts = rule.dst.map((d) => ({ alias: d.alias, target: target(d.alias, r), specs: d.specs }));
    return { rule, src, dsts, via: rule.via.map((v) => v.text) };
  });
}

function sourceSet(aliases: readonly Alias[], r: Resolver, interned: Map<string, readonly string[]>): SrcSet {
  const all = aliases.some((a) => r.nodes(a).all);
  const ids = new Set<number>();
  const ipIds = new Set<number>();
  const prefixes = new Set<string>();
  for (const a of aliases) {
    for (const id of r.nodes(a).ids) ids.add(id);
    const literal = r.prefixes(a);
    if (literal.length > 0) for (const p of literal) prefixes.add(p.text);
    else for (const id of r.nodes(a).ids) ipIds.add(id);
  }
  // Sorted lazily: only nodes whose packet filter is (re)built read them, and after a small topology change
  // that is a few rules' destinations, not every rule in the policy.
  let ips: { srcIPs: readonly string[]; key: string } | undefined;
  const sorted = () => {
    if (!ips) {
      const srcIPs = all ? ['*'] : [...sortIps(ipIds, r), ...[...prefixes].sort()];
      const key = srcIPs.join(',');
      const shared = interned.get(key) ?? srcIPs;
      interned.set(key, shared);
      ips = { srcIPs: shared, key };
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

/** Node addresses, IPv4 before IPv6, each in numeric order (deterministic output). */
export function sortIps(ids: Iterable<number>, r: Resolver): string[] {
  const ips = [...ids].flatMap((id) => r.topo.byId.get(id)!.ips.map((ip, i) => ({ ip, text: r.topo.byId.get(id)!.ipTexts[i]! })));
  ips.sort((a, b) => Number(a.ip.v6) - Number(b.ip.v6) || (a.ip.n < b.ip.n ? -1 : a.ip.n > b.ip.n ? 1 : 0));
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
      return t.prefixes.some((p) => n.ips.some((ip) => containsIp(p, ip)) || n.subnetRoutes.some((s) => overlaps(s, p)));
    case 'internet':
      return n.isExit;
    case 'self':
      return n.user !== undefined;
  }
}

/** The addresses of node n that a target covers, as FilterRule destination IPs. */
function targetIps(t: DstTarget, n: IndexedNode): readonly string[] {
  switch (t.kind) {
    case 'any':
      return ['*'];
    case 'nodes':
    case 'self':
      return n.ipTexts;
    case 'prefix':
      return t.prefixes.filter((p) => n.ips.some((ip) => containsIp(p, ip)) || n.subnetRoutes.some((s) => overlaps(s, p))).map((p) => p.text);
    case 'internet':
      return INTERNET_PREFIXES;
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

/** The packet filter for one node: only rules whose destinations are its addresses, routes or (exit nodes) the internet. */
export function filterForNode(rules: readonly CompiledRule[], n: IndexedNode, selfSources: SelfSources): FilterRule[] {
  const merged = new Map<string, { SrcIPs: readonly string[]; DstPorts: NetPortRange[]; IPProto?: readonly number[] }>();
  const caps: FilterRule[] = [];
  const add = (srcIPs: readonly string[], srcKey: string, spec: IpSpec, ips: readonly string[]) => {
    if (srcIPs.length === 0 || ips.length === 0) return;
    const key = `${srcKey}|${protoKey(spec)}`;
    let fr = merged.get(key);
    if (!fr) merged.set(key, (fr = { SrcIPs: srcIPs, DstPorts: [], ...(spec.protos ? { IPProto: spec.protos } : {}) }));
    for (const ip of ips) for (const p of spec.ports) fr.DstPorts.push({ IP: ip, Ports: { First: p.first, Last: p.last } });
  };
  for (const rule of rules) {
    if (rule.via.length > 0 && !rule.via.some((t) => n.tags.includes(t))) continue;
    for (const d of rule.dsts) {
      if (!targetHits(d.target, n)) continue;
      if (rule.via.length > 0 && (d.target.kind === 'nodes' || d.target.kind === 'any')) continue;
      const ips = targetIps(d.target, n);
      if (d.target.kind === 'self') {
        const own = selfSources(rule, n.user!);
        for (const spec of d.specs) add(own, `self:${own.join(',')}`, spec, ips);
      } else for (const spec of d.specs) add(rule.src.srcIPs, rule.src.key, spec, ips);
    }
    const cap = capRule(rule, n, selfSources);
    if (cap) caps.push(cap);
  }
  return [...merged.values(), ...caps];
}

/** A grant's `app` capabilities as a CapGrant rule, when this node is one of its destinations. */
function capRule(rule: CompiledRule, n: IndexedNode, selfSources: SelfSources): FilterRule | undefined {
  if (!rule.rule.app) return undefined;
  const hosts = n.ipTexts.map((ip) => (ip.includes(':') ? `${ip}/128` : `${ip}/32`));
  const grants: CapGrant[] = [];
  let srcIPs = rule.src.srcIPs;
  for (const d of rule.dsts) {
    if (!targetHits(d.target, n) || d.target.kind === 'internet') continue;
    if (d.target.kind === 'self') srcIPs = selfSources(rule, n.user!);
    const dsts = d.target.kind === 'any' ? ['0.0.0.0/0', '::/0'] : d.target.kind === 'prefix' ? targetIps(d.target, n) : hosts;
    grants.push({ Dsts: dsts, CapMap: rule.rule.app });
  }
  return grants.length > 0 && srcIPs.length > 0 ? { SrcIPs: srcIPs, CapGrant: grants } : undefined;
}
