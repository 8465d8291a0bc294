/**
 * The live policy compiled against the live tailnet: recompiled lazily after a policy or topology change,
 * so every map response in between reads the same cached per-node views.
 */
import { compilePolicy, parsePolicy, type CompiledPolicy, type Topology } from '../policy/index.ts';
import { servingRoutes } from '../domain/routes.ts';
import type { NodeField } from './changes.ts';
import type { Tailnet } from './tailnet.ts';

/** Tailscale's default policy when none is set: everyone may reach everything. */
export const allowAllPolicy = '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}';

/** Node fields that change what the policy says (who a node is, which addresses and routes it has). */
const policyFields: ReadonlySet<NodeField> = new Set(['tags', 'owner', 'routes', 'name']);

export function topologyOf(t: Tailnet): Topology {
  const users = t.users.list();
  const names = new Map(users.map((u) => [u.id, u.name]));
  return {
    users: users.map((u) => ({ id: u.id, name: u.name, email: u.email || undefined })),
    nodes: t.nodes.list().map((n) => ({
      id: n.id,
      name: n.givenName,
      user: n.userId !== null ? names.get(n.userId) : undefined,
      tags: n.tags,
      ipv4: n.ipv4,
      ipv6: n.ipv6,
      approvedRoutes: servingRoutes(n),
    })),
  };
}

export function createPolicyView(t: Tailnet, opts: { serverUrl: string }) {
  let compiled: CompiledPolicy | undefined;
  t.subscribe((c) => {
    if (c.kind === 'node-updated' && !c.fields.some((f) => policyFields.has(f))) return;
    if (c.kind === 'dns-changed') return;
    compiled = undefined;
  });
  return {
    /** The compiled live policy (the stored one was validated when it was set). */
    current(): CompiledPolicy {
      compiled ??= compilePolicy(parsePolicy(t.policy()?.text ?? allowAllPolicy, 'policy.hujson'), topologyOf(t), opts);
      return compiled;
    },
    /**
     * Which of the requested tags the owner may not give a node: tags missing from `tagOwners` or not owned
     * by the user (directly or through a group) or by one of the owner's tags.
     */
    unownedTags(owner: { user?: string; tags?: readonly string[] }, requested: readonly string[]): string[] {
      const c = this.current();
      const who = { user: owner.tags?.length ? undefined : owner.user, tags: owner.tags ?? [], ips: [] };
      const owns = (tag: string) => (c.policy.tagOwners.get(tag)?.members ?? []).some((m) => c.resolver.matches(m, who));
      return requested.filter((tag) => !owns(tag));
    },
  };
}

export type PolicyView = ReturnType<typeof createPolicyView>;
