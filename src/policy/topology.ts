/** The tailnet as the policy sees it (users and nodes), and an index of it built once per compilation. */
import { isExitRoute, parseIp, parsePrefix, type Ip, type Prefix } from '../net/ip.ts';

export interface TopologyUser {
  readonly id: number;
  /** Login name, e.g. "alice" (matched by "alice@") or "alice@example.com". */
  readonly name: string;
  readonly email?: string;
  /** Groups from the identity provider (without "group:"): the user is also a member of the policy's groups so named. */
  readonly idpGroups?: readonly string[];
}

export interface TopologyNode {
  readonly id: number;
  readonly name: string;
  /** Owner's user name; ignored when the node has tags (tags XOR user). */
  readonly user?: string;
  readonly tags: readonly string[];
  readonly ipv4: string;
  readonly ipv6: string;
  /** Approved routes; 0.0.0.0/0 and ::/0 together make an exit node. */
  readonly approvedRoutes: readonly string[];
}

export interface Topology {
  readonly users: readonly TopologyUser[];
  readonly nodes: readonly TopologyNode[];
}

/** A node with parsed addresses and its owner resolved. */
export interface IndexedNode {
  readonly node: TopologyNode;
  readonly id: number;
  readonly name: string;
  /** Owning user name, or undefined for tagged nodes. */
  readonly user: string | undefined;
  readonly tags: readonly string[];
  readonly ips: readonly Ip[];
  readonly ipTexts: readonly string[];
  readonly subnetRoutes: readonly Prefix[];
  readonly isExit: boolean;
}

export interface TopologyIndex {
  readonly users: readonly TopologyUser[];
  readonly nodes: readonly IndexedNode[];
  readonly byId: ReadonlyMap<number, IndexedNode>;
  /** Untagged nodes per owning user name; the unit autogroup:self works in. */
  readonly byUser: ReadonlyMap<string, readonly IndexedNode[]>;
  /** Nodes per tag they carry. */
  readonly byTag: ReadonlyMap<string, readonly IndexedNode[]>;
  /** Resolves a user alias ("alice@", "alice@example.com") to a topology user name, if that user exists. */
  userName(alias: string): string | undefined;
  nodeByIp(ip: Ip): IndexedNode | undefined;
}

/**
 * Per-node index entries kept between compiles: a caller that passes the same TopologyNode objects for
 * unchanged nodes skips re-parsing their addresses and routes.
 */
export type TopologyCache = WeakMap<TopologyNode, IndexedNode>;

export function indexTopology(t: Topology, cache?: TopologyCache): TopologyIndex {
  const nodes = t.nodes.map((n): IndexedNode => {
    const hit = cache?.get(n);
    if (hit) return hit;
    const indexed = indexNode(n);
    cache?.set(n, indexed);
    return indexed;
  });
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const byUser = new Map<string, IndexedNode[]>();
  const byTag = new Map<string, IndexedNode[]>();
  const push = (m: Map<string, IndexedNode[]>, key: string, n: IndexedNode) => {
    const list = m.get(key);
    if (list) list.push(n);
    else m.set(key, [n]);
  };
  for (const n of nodes) {
    if (n.user !== undefined) push(byUser, n.user, n);
    for (const tag of n.tags) push(byTag, tag, n);
  }
  // Built on first use: only tests and tools look nodes up by address, and a live compile runs per change.
  let byIp: Map<string, IndexedNode> | undefined;
  const ipIndex = () => {
    if (!byIp) {
      byIp = new Map();
      for (const n of nodes) for (const ip of n.ips) byIp.set(`${ip.v6}/${ip.n}`, n);
    }
    return byIp;
  };
  const aliasToUser = new Map<string, string>();
  for (const u of t.users) {
    aliasToUser.set(`${u.name}@`, u.name);
    aliasToUser.set(u.name, u.name);
    if (u.email) aliasToUser.set(u.email, u.name);
  }
  return {
    users: t.users,
    nodes,
    byId,
    byUser,
    byTag,
    userName: (alias) => aliasToUser.get(alias),
    nodeByIp: (ip) => ipIndex().get(`${ip.v6}/${ip.n}`),
  };
}

function indexNode(n: TopologyNode): IndexedNode {
  const parsed = [n.ipv4, n.ipv6].flatMap((text) => {
    const ip = text === '' ? undefined : parseIp(text);
    return ip ? [{ text, ip }] : [];
  });
  const routes = n.approvedRoutes.flatMap((r) => {
    const p = parsePrefix(r);
    return p && 'prefix' in p ? [p.prefix] : [];
  });
  return {
    node: n,
    id: n.id,
    name: n.name,
    user: n.tags.length > 0 ? undefined : n.user,
    tags: n.tags,
    ips: parsed.map((p) => p.ip),
    ipTexts: parsed.map((p) => p.text),
    subnetRoutes: routes.filter((r) => !isExitRoute(r)),
    isExit: routes.some((r) => isExitRoute(r) && !r.v6) && routes.some((r) => isExitRoute(r) && r.v6),
  };
}
