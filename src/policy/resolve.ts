/** Alias resolution: whether an alias matches an identity (a node, or a user/tag/IP named in a test), and the node set it denotes. */
import { containsIp, overlaps, type Ip, type Prefix } from '../net/ip.ts';
import type { IndexedNode, TopologyIndex } from './topology.ts';
import type { Alias, Policy } from './types.ts';

/** Who is on one end of a connection: a node's identity, or a synthetic one built from a test's alias. */
export interface Principal {
  /** Owning user name; undefined for tagged nodes. */
  readonly user: string | undefined;
  readonly tags: readonly string[];
  readonly ips: readonly Ip[];
  readonly nodeId?: number;
}

/** A set of nodes; `all` stands for every node without listing them. */
export interface NodeSet {
  readonly all: boolean;
  readonly ids: ReadonlySet<number>;
}

export interface Resolver {
  readonly topo: TopologyIndex;
  readonly policy: Policy;
  /** True when the alias names this principal (autogroup:self and :internet depend on the other end; they never match here). */
  matches(a: Alias, p: Principal): boolean;
  /** The nodes an alias denotes (cached per alias text). */
  nodes(a: Alias): NodeSet;
  /** The IP prefixes an alias denotes literally (hosts, IPs, ipsets). */
  prefixes(a: Alias): readonly Prefix[];
  /** User name an alias like "alice@" refers to. */
  userName(a: Alias & { kind: 'user' }): string;
  groupUsers(group: string): ReadonlySet<string>;
}

export function principalOf(n: IndexedNode): Principal {
  return { user: n.user, tags: n.tags, ips: n.ips, nodeId: n.id };
}

export function createResolver(policy: Policy, topo: TopologyIndex): Resolver {
  const nodeCache = new Map<string, NodeSet>();
  const groupCache = new Map<string, Set<string>>();
  const userName = (a: Alias & { kind: 'user' }) => topo.userName(a.name) ?? a.name.replace(/@$/, '');
  /**
   * Members of a group defined in the policy: the users it lists, plus the users whose IdP groups (see
   * TopologyUser.idpGroups) include its name. The one place group membership is computed, so compiled views,
   * policy tests, access diffs and tag ownership agree.
   */
  const groupUsers = (g: string) => {
    let s = groupCache.get(g);
    if (!s) {
      const defined = policy.groups.get(g);
      const listed = (defined?.members ?? []).flatMap((m) => (m.kind === 'user' ? [userName(m)] : []));
      const name = g.slice('group:'.length);
      const fromIdp = defined ? topo.users.filter((u) => u.idpGroups?.includes(name)).map((u) => u.name) : [];
      s = new Set([...listed, ...fromIdp]);
      groupCache.set(g, s);
    }
    return s;
  };
  const domainCache = new Map<string, Set<string>>();
  /** Users of a `user:*@domain` alias: those whose e-mail address (or e-mail-shaped name) is in the domain. */
  const domainUsers = (domain: string) => {
    let s = domainCache.get(domain);
    if (!s) {
      s = new Set(topo.users.filter((u) => emailDomain(u.email ?? u.name) === domain).map((u) => u.name));
      domainCache.set(domain, s);
    }
    return s;
  };
  const prefixes = (a: Alias): readonly Prefix[] => {
    if (a.kind === 'prefix') return [a.prefix];
    if (a.kind === 'host') return optional(policy.hosts.get(a.name)?.prefix);
    if (a.kind === 'ipset') return (policy.ipsets.get(a.name)?.members ?? []).flatMap((m) => prefixes(m));
    return [];
  };
  const matches = (a: Alias, p: Principal): boolean => {
    switch (a.kind) {
      case 'wildcard':
        return true;
      case 'user':
        return p.user !== undefined && p.user === userName(a);
      case 'group':
        return p.user !== undefined && groupUsers(a.name).has(p.user);
      case 'domain':
        return p.user !== undefined && p.tags.length === 0 && (domainUsers(a.name).has(p.user) || emailDomain(p.user) === a.name);
      case 'tag':
        return p.tags.includes(a.name);
      case 'host':
      case 'prefix':
      case 'ipset':
        return prefixes(a).some((pr) => p.ips.some((ip) => containsIp(pr, ip)));
      case 'autogroup':
        if (a.name === 'member') return p.user !== undefined && p.tags.length === 0;
        if (a.name === 'tagged') return p.tags.length > 0;
        return a.name === 'danger-all';
    }
  };
  /** Nodes that could match: the index answers users, groups and tags without a scan of the tailnet. */
  const candidates = (a: Alias): readonly IndexedNode[] => {
    if (a.kind === 'tag') return topo.byTag.get(a.name) ?? [];
    if (a.kind === 'user') return topo.byUser.get(userName(a)) ?? [];
    if (a.kind === 'domain') return [...domainUsers(a.name)].flatMap((u) => topo.byUser.get(u) ?? []).sort((x, y) => x.id - y.id);
    if (a.kind === 'group') return [...groupUsers(a.name)].flatMap((u) => topo.byUser.get(u) ?? []).sort((x, y) => x.id - y.id);
    return topo.nodes;
  };
  const nodes = (a: Alias): NodeSet => {
    const hit = nodeCache.get(a.text);
    if (hit) return hit;
    const all = a.kind === 'wildcard' || (a.kind === 'autogroup' && a.name === 'danger-all');
    const ids = new Set<number>();
    // A tag's, user's or group's candidates all match (the index holds exactly those nodes): no check each.
    const exact = a.kind === 'tag' || a.kind === 'user' || a.kind === 'group';
    if (!all) for (const n of candidates(a)) if (exact || matches(a, principalOf(n))) ids.add(n.id);
    const set = { all, ids };
    nodeCache.set(a.text, set);
    return set;
  };
  return { topo, policy, matches, nodes, prefixes, userName, groupUsers };
}

/** The lower-cased part after the last "@", or undefined. */
export function emailDomain(email: string): string | undefined {
  const at = email.lastIndexOf('@');
  return at < 0 ? undefined : email.slice(at + 1).toLowerCase();
}

const optional = <T>(x: T | undefined): T[] => (x === undefined ? [] : [x]);

/** Nodes that route (approved subnet routes) into any of the prefixes. */
export function routersFor(topo: TopologyIndex, prefixes: readonly Prefix[]): IndexedNode[] {
  return topo.nodes.filter((n) => n.subnetRoutes.some((r) => prefixes.some((p) => overlaps(r, p))));
}
