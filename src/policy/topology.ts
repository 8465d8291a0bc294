/** The tailnet as the policy sees it (users and nodes), and an index of it: built per compile, or kept live. */
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
  return buildIndex(t.users, t.nodes.map((n) => cachedEntry(n, cache))).index;
}

/** A node added, removed or edited between two compiles, as its index entries before and after. */
export interface ChangedNode {
  readonly id: number;
  readonly old?: IndexedNode;
  readonly new?: IndexedNode;
}

/**
 * The index of the live tailnet, kept current by node edits so that a compile after a few changes costs those
 * few, not the tailnet. `apply` moves the index in place: a compile made from it holds until the next `apply`,
 * so use the newest compile and keep none across an await. Users are fixed; when they change, build a new one.
 */
export interface LiveTopology {
  readonly index: TopologyIndex;
  /** Puts these nodes in (new or edited) and takes these ids out (an id in one list only); returns what changed. */
  apply(upserts: readonly TopologyNode[], removed: readonly number[]): ChangedNode[];
}

export function liveTopology(t: Topology, cache?: TopologyCache): LiveTopology {
  const nodes = t.nodes.map((n) => cachedEntry(n, cache)).sort((a, b) => a.id - b.id);
  const live = buildIndex(t.users, nodes);
  const take = (old: IndexedNode) => {
    live.byId.delete(old.id);
    removeEntry(live.nodes, old);
    if (old.user !== undefined) removeFrom(live.byUser, old.user, old);
    for (const tag of old.tags) removeFrom(live.byTag, tag, old);
  };
  const put = (n: IndexedNode) => {
    live.byId.set(n.id, n);
    insertById(live.nodes, n);
    if (n.user !== undefined) insertInto(live.byUser, n.user, n);
    for (const tag of n.tags) insertInto(live.byTag, tag, n);
  };
  return {
    index: live.index,
    apply(upserts, removed) {
      const out: ChangedNode[] = [];
      for (const id of removed) {
        const old = live.byId.get(id);
        if (!old) continue;
        take(old);
        out.push({ id, old });
      }
      for (const n of upserts) {
        const old = live.byId.get(n.id);
        const entry = cachedEntry(n, cache);
        if (old === entry) continue;
        if (old) take(old);
        put(entry);
        out.push({ id: n.id, old, new: entry });
      }
      if (out.length > 0) live.addressesMoved();
      return out;
    },
  };
}

/**
 * Entries of every compile not given a cache of its own (the live view, policy checks, access diffs): callers
 * that reuse TopologyNode objects (topologyOf) parse a node's addresses once, not once per compile.
 */
const sharedEntries: TopologyCache = new WeakMap();

function cachedEntry(n: TopologyNode, cache: TopologyCache = sharedEntries): IndexedNode {
  const hit = cache.get(n);
  if (hit) return hit;
  const indexed = indexNode(n);
  cache.set(n, indexed);
  return indexed;
}

/** The index over these entries, with the mutable maps behind it (for LiveTopology). */
function buildIndex(users: readonly TopologyUser[], nodes: IndexedNode[]) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const byUser = new Map<string, IndexedNode[]>();
  const byTag = new Map<string, IndexedNode[]>();
  for (const n of nodes) {
    if (n.user !== undefined) pushTo(byUser, n.user, n);
    for (const tag of n.tags) pushTo(byTag, tag, n);
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
  for (const u of users) {
    aliasToUser.set(`${u.name}@`, u.name);
    aliasToUser.set(u.name, u.name);
    if (u.email) aliasToUser.set(u.email, u.name);
  }
  const index: TopologyIndex = {
    users,
    nodes,
    byId,
    byUser,
    byTag,
    userName: (alias) => aliasToUser.get(alias),
    nodeByIp: (ip) => ipIndex().get(`${ip.v6}/${ip.n}`),
  };
  return { index, nodes, byId, byUser, byTag, addressesMoved: () => (byIp = undefined) };
}

function pushTo(m: Map<string, IndexedNode[]>, key: string, n: IndexedNode): void {
  const list = m.get(key);
  if (list) list.push(n);
  else m.set(key, [n]);
}

/** Where id is, or would go, in a list sorted by id (a live index keeps its lists so). */
function positionOf(list: readonly IndexedNode[], id: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertById(list: IndexedNode[], n: IndexedNode): void {
  list.splice(positionOf(list, n.id), 0, n);
}

function insertInto(m: Map<string, IndexedNode[]>, key: string, n: IndexedNode): void {
  const list = m.get(key);
  if (list) insertById(list, n);
  else m.set(key, [n]);
}

function removeEntry(list: IndexedNode[], n: IndexedNode): void {
  const i = positionOf(list, n.id);
  if (list[i] === n) list.splice(i, 1);
}

function removeFrom(m: Map<string, IndexedNode[]>, key: string, n: IndexedNode): void {
  const list = m.get(key);
  if (!list) return;
  removeEntry(list, n);
  if (list.length === 0) m.delete(key);
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
