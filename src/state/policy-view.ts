/**
 * The live policy compiled against the live tailnet: recompiled lazily after a policy or topology change,
 * so every map response in between reads the same cached per-node views. The policy text is parsed once per
 * text, the topology index is moved by the nodes that changed (not rebuilt), and `settle()` lets a burst of
 * new streams share one compile instead of compiling once each.
 */
import { compilePolicy, liveTopology, parsePolicy, type ChangedNode, type CompiledPolicy, type LiveTopology, type Policy, type Topology, type SourceCache, type TopologyIndex, type TopologyNode, type TopologyUser } from '../policy/index.ts';
import { servingRoutes } from '../domain/routes.ts';
import type { Node, User } from '../domain/types.ts';
import type { NodeField } from './changes.ts';
import type { Tailnet } from './tailnet.ts';

/** Tailscale's default policy when none is set: everyone may reach everything. */
export const allowAllPolicy = '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}';

/** Node fields that change what the policy says (who a node is, which addresses and routes it has). */
const policyFields: ReadonlySet<NodeField> = new Set(['tags', 'owner', 'routes', 'name']);

/** How long a new stream may wait for a shared compile: the mapper's batch window. */
const settleMs = 15;

/**
 * One TopologyNode per node record for every compile of this process (the live view, policy checks, access
 * diffs), so the index entries cached on them (topology.ts) serve all of them.
 */
const sharedTopologyNodes = new WeakMap<Node, TopologyNode>();

/**
 * The tailnet as the policy sees it. A node record that has not changed (and whose owner kept their name) maps
 * to the same TopologyNode object as last time, so compile caches keyed on it stay valid.
 */
export function topologyOf(t: Tailnet, reuse = sharedTopologyNodes): Topology {
  return withOwnerNames(t, reuse).topology;
}

/** The topology, and the owners' names its nodes were given (for nodes added to it later). */
function withOwnerNames(t: Tailnet, reuse?: WeakMap<Node, TopologyNode>) {
  const users = t.users.list();
  const names: ReadonlyMap<number, string> = new Map(users.map((u) => [u.id, u.name]));
  const topology: Topology = { users: policyUsers(users, t.idpGroupsInPolicy), nodes: t.nodes.list().map((n) => topologyNode(n, names, reuse)) };
  return { topology, names };
}

/** A node as the policy sees it; the same object as last time while its record and owner's name are the same. */
function topologyNode(n: Node, names: ReadonlyMap<number, string>, reuse?: WeakMap<Node, TopologyNode>): TopologyNode {
  const user = n.userId !== null ? names.get(n.userId) : undefined;
  const hit = reuse?.get(n);
  if (hit && hit.user === user) return hit;
  const node = { id: n.id, name: n.givenName, user, tags: n.tags, ipv4: n.ipv4, ipv6: n.ipv6, approvedRoutes: servingRoutes(n) };
  reuse?.set(n, node);
  return node;
}

/**
 * Users as the policy sees them, for every compile (live views, checks, diffs, tag owners). Their IdP groups
 * count only when `oidc.policy_groups` is on: turning it off takes them out at once, though they stay stored.
 */
export function policyUsers(users: readonly User[], withIdpGroups: boolean): TopologyUser[] {
  return users.map((u) => ({
    id: u.id,
    name: u.name,
    email: u.email || undefined,
    ...(withIdpGroups && u.idpGroups?.length ? { idpGroups: u.idpGroups } : {}),
  }));
}

export interface PolicyViewOptions {
  readonly serverUrl: string;
  /** Told how long each compile took, in seconds (metrics). */
  readonly onCompile?: (seconds: number) => void;
}

export function createPolicyView(t: Tailnet, { onCompile, ...opts }: PolicyViewOptions) {
  let compiled: CompiledPolicy | undefined;
  let parsed: { text: string; policy: Policy } | undefined;
  let settling: Promise<void> | undefined;
  const sourceCache: SourceCache = new WeakMap();
  /** The index compiles read, with its owners' names; dropped when users change (the next compile builds it). */
  let live: { topology: LiveTopology; names: ReadonlyMap<number, string> } | undefined;
  /** Nodes edited since the last compile: their newest record, or null once removed. */
  const pending = new Map<number, Node | null>();
  t.subscribe((c) => {
    if (c.kind === 'node-updated' && !c.fields.some((f) => policyFields.has(f))) return;
    if (c.kind === 'dns-changed') return;
    if (c.kind === 'node-added' || c.kind === 'node-updated') pending.set(c.node.id, c.node);
    else if (c.kind === 'node-removed') pending.set(c.node.id, null);
    else if (c.kind !== 'policy-changed') live = undefined;
    compiled = undefined;
  });
  const policy = (): Policy => {
    const text = t.policy()?.text ?? allowAllPolicy;
    if (parsed?.text !== text) parsed = { text, policy: parsePolicy(text, 'policy.hujson') };
    return parsed.policy;
  };
  /** The live index moved to the tailnet as it is now, and what changed in it since the last compile. */
  const topology = (): { index: TopologyIndex; changed?: ChangedNode[] } => {
    if (!live) {
      pending.clear();
      const { topology, names } = withOwnerNames(t, sharedTopologyNodes);
      live = { topology: liveTopology(topology), names };
      return { index: live.topology.index };
    }
    const upserts: TopologyNode[] = [];
    const removed: number[] = [];
    for (const [id, n] of pending) n ? upserts.push(topologyNode(n, live.names, sharedTopologyNodes)) : removed.push(id);
    pending.clear();
    return { index: live.topology.index, changed: live.topology.apply(upserts, removed) };
  };
  let last: CompiledPolicy | undefined;
  let affected: Set<number> | 'all' = 'all';
  const current = (): CompiledPolicy => {
    if (compiled) return compiled;
    const started = performance.now();
    const { index, changed } = topology();
    compiled = last = compilePolicy(policy(), index, { ...opts, sourceCache, previous: last, changed });
    onCompile?.((performance.now() - started) / 1000);
    if (compiled.affected === 'all') affected = 'all';
    else if (affected !== 'all') for (const id of compiled.affected) affected.add(id);
    return compiled;
  };
  return {
    /** The compiled live policy (the stored one was validated when it was set). */
    current,
    /**
     * Nodes whose view may have changed in any compile since the last call ('all' when unknown), so a
     * consumer that applies views (the mapper) looks only at those.
     */
    takeAffected(): ReadonlySet<number> | 'all' {
      current();
      const out = affected;
      affected = new Set();
      return out;
    },
    /**
     * Resolves once the compile reflects every change so far; when it is stale, waits one batch window so that
     * all callers arriving meanwhile (a mass connect) share a single compile. Take it with `current()` right
     * after: a compile holds only until the next one (its index is live), so none is handed across an await.
     */
    settle(): Promise<void> {
      if (compiled) return Promise.resolve();
      settling ??= new Promise((resolve) =>
        setTimeout(() => {
          settling = undefined;
          current();
          resolve();
        }, settleMs),
      );
      return settling;
    },
  };
}

export type PolicyView = ReturnType<typeof createPolicyView>;
