/** Compiles a policy against a topology once, then derives each node's packet filter, SSH policy, peers and capabilities lazily. */
import { isExitRoute, parsePrefix } from '../net/ip.ts';
import { affectedNodes, changedNodes, comparable, type CompileParts } from './incremental.ts';
import { isInternetIp } from './addresses.ts';
import { buildRuleIndex, type RuleIndex } from './rule-index.ts';
import { createResolver, principalOf, type Principal, type Resolver } from './resolve.ts';
import { allowAllFilter, compileRules, filterForNode, identityKeyer, selfSourcesCache, targetHits, type CompiledDst, type CompiledRule, type SourceCache } from './rules.ts';
import { compileSsh, sshDecision, sshForNode, type SshOptions } from './ssh.ts';
import { indexTopology, type ChangedNode, type IndexedNode, type Topology, type TopologyCache, type TopologyIndex } from './topology.ts';
import type { Alias, IpSpec, Policy } from './types.ts';
import type { FilterRule, SshPolicy } from './wire.ts';

/** Everything one node receives from the policy. */
export interface NodeView {
  readonly nodeId: number;
  /** tailcfg FilterRule[]: the node's inbound firewall. */
  readonly packetFilter: readonly FilterRule[];
  readonly sshPolicy: SshPolicy;
  /** Ids of the nodes this node may reach or be reached by, sorted; it sees exactly these. */
  readonly peers: readonly number[];
  /**
   * The same ids, the node's own possibly among them: one array shared by every node of the same rule
   * signature. `peers` copies it without the node, once per call; a copy kept per view was quadratic with
   * allow-all (5,000 nodes: 25 million ids) and 8 MB allocated by every 10,000-node recompile.
   */
  readonly reach: readonly number[];
  /** nodeAttrs attributes (plus randomize-client-port / disable-ipv4 from the top-level switches). */
  readonly capabilities: readonly string[];
  /** The same as a tailcfg NodeCapMap. */
  readonly capMap: Readonly<Record<string, readonly unknown[]>>;
}

/** The policy, topology, resolver and rules (CompileParts) plus the per-node views and checks derived from them. */
export interface CompiledPolicy extends CompileParts {
  /** Per-node view, computed on first request and cached. Throws for an unknown node id. */
  forNode(id: number): NodeView;
  /** The views computed (or carried over) so far, for the next compile to reuse. */
  readonly cachedViews: ReadonlyMap<number, NodeView>;
  /** Nodes whose view may differ from the previous compile's ('all' without one). */
  readonly affected: ReadonlySet<number> | 'all';
  /** The rules by the names they hold nodes through, for the next compile of the same policy and users. */
  readonly ruleIndex?: RuleIndex;
  /** Whether src may open proto/port to dst (IANA proto number). */
  canAccess(src: Principal, dst: Principal, proto: number, port: number): boolean;
  /** First-match SSH decision for src connecting to dst as `login`. */
  sshDecision(src: Principal, dst: Principal, login: string): 'accept' | 'check' | 'deny';
  /** Which of a node's advertised routes autoApprovers approve (exit routes via exitNode). */
  autoApprovedRoutes(nodeId: number, routes: readonly string[]): string[];
}

export interface CompileOptions extends SshOptions {
  /** Index entries reused across compiles of a changing topology (see TopologyCache). */
  readonly topologyCache?: TopologyCache;
  /** Rules' sorted source addresses reused across compiles of the same parsed policy (see SourceCache). */
  readonly sourceCache?: SourceCache;
  /**
   * The last compile of the same live policy: views the topology change cannot have altered are carried over
   * (same objects, so callers can tell "unchanged" by identity). Only its views map is kept, never the compile.
   */
  readonly previous?: CompiledPolicy;
  /**
   * When `topology` is a live index (LiveTopology) that `previous` was compiled from too: what its `apply` calls
   * changed since. A fresh index is compared with the previous one instead.
   */
  readonly changed?: readonly ChangedNode[];
}

const DEFAULT_PROTOS = [6, 17, 1, 58];

export function compilePolicy(policy: Policy, topology: Topology | TopologyIndex, opts: CompileOptions = {}): CompiledPolicy {
  const topo = 'byId' in topology ? topology : indexTopology(topology, opts.topologyCache);
  const r = createResolver(policy, topo);
  const prev = opts.previous;
  // The same policy for the same users: rules no changed node touches are carried over with their member sets.
  const same = prev && policy.hasAccessRules && comparable(prev, { policy, topology: topo });
  const changed = same ? (opts.changed ?? changedNodes(prev.topology, topo)) : undefined;
  // Built again only when the policy or its users changed; otherwise handed on from the previous compile.
  const ruleIndex = policy.hasAccessRules ? ((changed && prev!.ruleIndex) || buildRuleIndex(policy.rules, r)) : undefined;
  const touched = changed && new Set(ruleIndex!.touchedBy(changed));
  const rules = compileRules(policy.rules, r, opts.sourceCache, changed && { rules: prev!.rules, changed, touched: touched! });
  const ssh = compileSsh(policy.ssh, r, opts);
  const selfSources = selfSourcesCache(r);
  let allowAll: readonly FilterRule[] | undefined;
  const peers = peerFinder(policy, rules, topo, ruleIndex);
  const views = new Map<number, NodeView>();
  const affected = prev ? affectedNodes(prev, { policy, topology: topo, resolver: r, rules, ssh }, changed, touched) : 'all';
  const prevViews = affected === 'all' ? undefined : prev?.cachedViews;

  const node = (id: number): IndexedNode => {
    const n = topo.byId.get(id);
    if (!n) throw new Error(`unknown node id ${id}`);
    return n;
  };
  const forNode = (id: number): NodeView => {
    const hit = views.get(id) ?? (affected !== 'all' && !affected.has(id) ? prevViews?.get(id) : undefined);
    if (hit) {
      views.set(id, hit);
      return hit;
    }
    const n = node(id);
    const capabilities = capabilitiesOf(policy, r, n);
    const view = new View(
      id,
      policy.hasAccessRules ? filterForNode(rules, n, selfSources, r, ruleIndex) : (allowAll ??= allowAllFilter(r)),
      sshForNode(ssh, n, r),
      peers(n),
      capabilities,
    );
    views.set(id, view);
    return view;
  };
  const canAccess = (src: Principal, dst: Principal, proto: number, port: number) =>
    !policy.hasAccessRules || rules.some((cr) => ruleAllows(cr, r, src, dst, proto, port));
  const autoApprovedRoutes = (id: number, routes: readonly string[]) => {
    const p = principalOf(node(id));
    const ok = (as: readonly Alias[]) => as.some((a) => r.matches(a, p));
    return routes.filter((route) => {
      const pr = parsePrefix(route);
      if (!pr || 'error' in pr) return false;
      if (isExitRoute(pr.prefix)) return ok(policy.autoApprovers.exitNode);
      return policy.autoApprovers.routes.some((e) => containsRange(e.prefix, pr.prefix) && ok(e.approvers));
    });
  };
  return {
    policy, topology: topo, resolver: r, rules, ssh, forNode, cachedViews: views, affected, canAccess, autoApprovedRoutes, ruleIndex,
    sshDecision: (src, dst, login) => sshDecision(ssh, r, src, dst, login),
  };
}

/** A NodeView; a class so that `peers` holds on to nothing of the compile that made it (a closure would). */
class View implements NodeView {
  readonly capMap: Readonly<Record<string, readonly unknown[]>>;
  constructor(
    readonly nodeId: number,
    readonly packetFilter: readonly FilterRule[],
    readonly sshPolicy: SshPolicy,
    readonly reach: readonly number[],
    readonly capabilities: readonly string[],
  ) {
    this.capMap = Object.fromEntries(capabilities.map((c) => [c, []]));
  }
  get peers(): readonly number[] {
    return this.reach.filter((p) => p !== this.nodeId);
  }
}

const containsRange = (outer: { v6: boolean; lo: bigint; hi: bigint }, inner: { v6: boolean; lo: bigint; hi: bigint }) =>
  outer.v6 === inner.v6 && outer.lo <= inner.lo && inner.hi <= outer.hi;

function specAllows(s: IpSpec, proto: number, port: number): boolean {
  return (s.protos ?? DEFAULT_PROTOS).includes(proto) && s.ports.some((p) => p.first <= port && port <= p.last);
}

function ruleAllows(cr: CompiledRule, r: Resolver, src: Principal, dst: Principal, proto: number, port: number): boolean {
  if (!cr.rule.src.some((a) => r.matches(a, src))) return false;
  return cr.dsts.some((d) => dstMatches(d, r, src, dst) && d.specs.some((s) => specAllows(s, proto, port)));
}

function dstMatches(d: CompiledDst, r: Resolver, src: Principal, dst: Principal): boolean {
  if (d.target.kind === 'self') return src.user !== undefined && src.tags.length === 0 && src.user === dst.user && dst.tags.length === 0;
  if (d.target.kind === 'internet') return dst.ips.some(isInternetIp);
  return r.matches(d.alias, dst);
}

function capabilitiesOf(policy: Policy, r: Resolver, n: IndexedNode): string[] {
  const p = principalOf(n);
  const caps = policy.nodeAttrs.filter((a) => a.target.some((t) => r.matches(t, p))).flatMap((a) => a.attr.map((x) => x.text));
  if (policy.randomizeClientPort) caps.push('randomize-client-port');
  if (policy.disableIPv4) caps.push('disable-ipv4');
  return [...new Set(caps)];
}

/**
 * Peer sets. Nodes that sit in the same rules' sources and destinations have the same peers, so results are
 * cached per membership signature: with group/tag-based rules there are few signatures however many nodes.
 * A node's set may hold the node itself (NodeView.reach): the nodes of a signature share one array.
 */
function peerFinder(policy: Policy, rules: readonly CompiledRule[], topo: TopologyIndex, index?: RuleIndex): (n: IndexedNode) => readonly number[] {
  const positions = [...rules.keys()];
  const narrowed = new Map<IndexedNode, readonly number[]>();
  /** The rules n may sit in (the others add nothing to its peers or its signature); asked twice per new signature. */
  const rulesOf = (n: IndexedNode) => {
    if (!index) return positions;
    let at = narrowed.get(n);
    if (!at) narrowed.set(n, (at = index.rulesOf(n)));
    return at;
  };
  let sortedIds: number[] | undefined;
  const allIds = () => (sortedIds ??= Array.from(Float64Array.from(topo.nodes, (n) => n.id).sort()));
  const hasSelf = rules.some((cr) => cr.dsts.some((d) => d.target.kind === 'self'));
  const dstNodeCache = new Map<CompiledDst, readonly number[]>();
  /** Peers (sorted, the node itself still in) per signature: the nodes of a block share one. */
  const bySig = new Map<string, readonly number[]>();
  const routed = (cr: CompiledRule, m: IndexedNode) => cr.via.length === 0 || cr.via.some((t) => m.tags.includes(t));
  const hits = (cr: CompiledRule, d: CompiledDst, m: IndexedNode) => targetHits(d.target, m) && routed(cr, m);
  const dstNodes = (cr: CompiledRule, d: CompiledDst) => {
    let ids = dstNodeCache.get(d);
    if (!ids) {
      // A node set is its own answer (the resolver drew it from this topology); other targets are looked for.
      ids = d.target.kind === 'nodes' && cr.via.length === 0 ? [...d.target.ids] : topo.nodes.filter((m) => hits(cr, d, m)).map((m) => m.id);
      dstNodeCache.set(d, ids);
    }
    return ids;
  };
  const ownNodes = (user: string | undefined) => (user === undefined ? [] : (topo.byUser.get(user) ?? []));
  const compute = (n: IndexedNode): ReadonlySet<number> | 'all' => {
    const out = new Set<number>();
    for (const i of rulesOf(n)) {
      const cr = rules[i]!;
      const inSrc = cr.src.all || cr.src.ids.has(n.id);
      for (const d of cr.dsts) {
        if (d.target.kind === 'self') {
          const own = ownNodes(n.user);
          if (inSrc) for (const m of own) out.add(m.id);
          for (const m of own) if (cr.src.all || cr.src.ids.has(m.id)) out.add(m.id);
          continue;
        }
        if (inSrc) {
          if (d.target.kind === 'any' && cr.via.length === 0) return 'all';
          for (const id of dstNodes(cr, d)) out.add(id);
        }
        if (hits(cr, d, n) || (d.target.kind === 'any' && cr.via.length === 0)) {
          if (cr.src.all) return 'all';
          for (const id of cr.src.ids) out.add(id);
        }
      }
    }
    return out;
  };
  // Nodes alike in owner and tags share a signature when the rules look at nothing else.
  const identity = identityKeyer(rules);
  const sigOf = new Map<string, string>();
  const signature = (n: IndexedNode) => {
    if (!identity) return ruleSignature(n);
    const id = identity(n);
    let sig = sigOf.get(id);
    if (sig === undefined) sigOf.set(id, (sig = ruleSignature(n)));
    return sig;
  };
  /** Which rules have n as a source and which destinations hit it, as the positions that do (most do not). */
  const ruleSignature = (n: IndexedNode) => {
    let sig = '';
    for (const i of rulesOf(n)) {
      const cr = rules[i]!;
      if (cr.src.all || cr.src.ids.has(n.id)) sig += `s${i},`;
      for (let j = 0; j < cr.dsts.length; j++) {
        const x = cr.dsts[j]!;
        if (x.target.kind !== 'self' && hits(cr, x, n)) sig += `d${i}.${j},`;
      }
    }
    return `${sig}|${hasSelf ? (n.user ?? '') : ''}`;
  };
  return (n) => {
    if (!policy.hasAccessRules) return allIds();
    const sig = signature(n);
    let ids = bySig.get(sig);
    if (!ids) {
      const set = compute(n);
      bySig.set(sig, (ids = set === 'all' ? allIds() : Array.from(Float64Array.from(set).sort())));
    }
    return ids;
  };
}
