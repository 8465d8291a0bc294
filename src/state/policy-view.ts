/**
 * The live policy compiled against the live tailnet: recompiled lazily after a policy or topology change,
 * so every map response in between reads the same cached per-node views. The policy text is parsed once per
 * text, unchanged nodes keep their parsed index entries, and `settled()` lets a burst of new streams share
 * one compile instead of compiling once each.
 */
import { compilePolicy, parsePolicy, type CompiledPolicy, type Policy, type Topology, type SourceCache, type TopologyCache, type TopologyNode, type TopologyUser } from '../policy/index.ts';
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
 * The tailnet as the policy sees it. With `reuse`, a node record that has not changed (and whose owner kept
 * their name) maps to the same TopologyNode object as last time, so compile caches keyed on it stay valid.
 */
export function topologyOf(t: Tailnet, reuse?: WeakMap<Node, TopologyNode>): Topology {
  const users = t.users.list();
  const names = new Map(users.map((u) => [u.id, u.name]));
  return {
    users: policyUsers(users, t.idpGroupsInPolicy),
    nodes: t.nodes.list().map((n) => {
      const user = n.userId !== null ? names.get(n.userId) : undefined;
      const hit = reuse?.get(n);
      if (hit && hit.user === user) return hit;
      const node = { id: n.id, name: n.givenName, user, tags: n.tags, ipv4: n.ipv4, ipv6: n.ipv6, approvedRoutes: servingRoutes(n) };
      reuse?.set(n, node);
      return node;
    }),
  };
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
  let settling: Promise<CompiledPolicy> | undefined;
  const topologyNodes = new WeakMap<Node, TopologyNode>();
  const topologyCache: TopologyCache = new WeakMap();
  const sourceCache: SourceCache = new WeakMap();
  t.subscribe((c) => {
    if (c.kind === 'node-updated' && !c.fields.some((f) => policyFields.has(f))) return;
    if (c.kind === 'dns-changed') return;
    compiled = undefined;
  });
  const policy = (): Policy => {
    const text = t.policy()?.text ?? allowAllPolicy;
    if (parsed?.text !== text) parsed = { text, policy: parsePolicy(text, 'policy.hujson') };
    return parsed.policy;
  };
  let last: CompiledPolicy | undefined;
  let affected: Set<number> | 'all' = 'all';
  const current = (): CompiledPolicy => {
    if (compiled) return compiled;
    const started = performance.now();
    compiled = last = compilePolicy(policy(), topologyOf(t, topologyNodes), { ...opts, topologyCache, sourceCache, previous: last });
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
     * The compiled policy once it reflects every change so far; when it is stale, waits one batch window so
     * that all callers arriving meanwhile (a mass connect) share a single compile.
     */
    settled(): Promise<CompiledPolicy> {
      if (compiled) return Promise.resolve(compiled);
      settling ??= new Promise((resolve) =>
        setTimeout(() => {
          settling = undefined;
          resolve(current());
        }, settleMs),
      );
      return settling;
    },
  };
}

export type PolicyView = ReturnType<typeof createPolicyView>;
