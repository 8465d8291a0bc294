/**
 * "What can X reach, who can reach X": read off the per-node views the control plane sends (each node's packet
 * filter and SSH policy from CompiledPolicy.forNode), so the answer is what the clients enforce, not a second
 * reading of the policy file. X is a set of nodes (a machine, a user's, a group's users', a tag's). Every node's
 * view is computed once: meant for review, not the hot path.
 */
import { containsIp, overlaps, parseCidr, parseIp, type IpRange } from '../net/ip.ts';
import { isInternetRange } from './addresses.ts';
import type { CompiledPolicy } from './compile.ts';
import { formatPorts, mergeRanges, protoLabel } from './diff.ts';
import type { IndexedNode } from './topology.ts';
import type { FilterRule, SshRuleWire } from './wire.ts';

/** One row of the answer: the other end, which of X's nodes it concerns, and how. */
export interface ReachRow {
  /** A node name, a prefix with its router ("10.1.0.0/24 via router"), "the internet via exit", or "any address". */
  readonly peer: string;
  /** The other end's node id, when it is a node. */
  readonly peerId?: number;
  /** Names of X's nodes the row is about. */
  readonly nodes: readonly string[];
  /** Network rows: "*" or "22,80,1000-2000"; SSH rows: the SSH users, "deploy" or "root->admin". */
  readonly what: string;
  /** Network rows: "tcp", "tcp,udp" or "any"; SSH rows: accept, check or reject. */
  readonly how: string;
}

export interface Reach {
  /** Destinations X's nodes may open connections to. */
  readonly reaches: readonly ReachRow[];
  /** Sources that may open connections to X's nodes. */
  readonly reachedBy: readonly ReachRow[];
  /** Nodes X's nodes may SSH to (Tailscale SSH), as which users. */
  readonly sshTo: readonly ReachRow[];
  /** Who may SSH to X's nodes, as which users. */
  readonly sshFrom: readonly ReachRow[];
}

/** Source ranges that stand for tailnet devices: they are shown as the nodes inside them. */
const tailnetRanges = ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'].map((c) => parseCidr(c)!);

/** A filter address: "*", an IP, a CIDR or a "first-last" range. */
function parseEntry(s: string): IpRange | 'any' | undefined {
  if (s === '*') return 'any';
  const dash = s.indexOf('-');
  if (dash > 0) {
    const [lo, hi] = [parseIp(s.slice(0, dash)), parseIp(s.slice(dash + 1))];
    return lo && hi && lo.v6 === hi.v6 ? { v6: lo.v6, lo: lo.n, hi: hi.n } : undefined;
  }
  if (s.includes('/')) return parseCidr(s);
  const ip = parseIp(s);
  return ip && { v6: ip.v6, lo: ip.n, hi: ip.n };
}

/** A filter rule's protocols as the access diff writes them; no IPProto is the client default, "any". */
const protocols = (rule: FilterRule) => (rule.IPProto ? protoLabel(new Set(rule.IPProto)) : 'any');

const sshUsers = (r: SshRuleWire) =>
  Object.entries(r.sshUsers)
    .filter(([, local]) => local !== '')
    .map(([req, local]) => (local === '=' || local === req ? req : `${req}->${local}`))
    .join(', ');

const sshAction = (r: SshRuleWire) => (r.action.accept ? 'accept' : r.action.holdAndDelegate ? 'check' : 'reject');

/** Collects rows, merging ports per (peer, protocol, node) and then the nodes of rows that read the same. */
function rows() {
  const acc = new Map<string, { peer: string; peerId?: number; how: string; node: string; ports: { first: number; last: number }[]; what?: string }>();
  return {
    add(peer: string, peerId: number | undefined, node: string, how: string, ports: { first: number; last: number }[] | string) {
      const key = [peer, how, node, typeof ports === 'string' ? ports : ''].join('|');
      const row = acc.get(key) ?? { peer, peerId, how, node, ports: [] };
      if (typeof ports === 'string') row.what = ports;
      else row.ports.push(...ports);
      acc.set(key, row);
    },
    done(): ReachRow[] {
      const out = new Map<string, ReachRow & { nodes: string[] }>();
      for (const r of acc.values()) {
        const what = r.what ?? formatPorts(mergeRanges(r.ports));
        const key = [r.peer, r.how, what].join('|');
        const row = out.get(key) ?? { peer: r.peer, peerId: r.peerId, what, how: r.how, nodes: [] };
        row.nodes.push(r.node);
        out.set(key, row);
      }
      return [...out.values()]
        .map((r) => ({ ...r, nodes: [...new Set(r.nodes)].sort() }))
        .sort((a, b) => cmp(a.peer, b.peer) || cmp(a.how, b.how) || cmp(a.what, b.what));
    },
  };
}

const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);

/** What the nodes `ids` reach and what reaches them under the compiled policy. */
export function reachOf(c: CompiledPolicy, ids: readonly number[]): Reach {
  const topo = c.topology;
  const subject = ids.map((id) => topo.byId.get(id)).filter((n): n is IndexedNode => n !== undefined);
  const subjectByIp = new Map(subject.flatMap((n) => n.ipTexts.map((ip) => [ip, n] as const)));

  /**
   * The subject's nodes a filter's SrcIPs cover. Nodes' filters share SrcIPs arrays (one per rule source), so the
   * answer is kept per array: 10,000 machines' filters are not 10,000 parses of the same list.
   */
  const coveredCache = new WeakMap<readonly string[], readonly IndexedNode[]>();
  const covered = (srcIPs: readonly string[]): readonly IndexedNode[] => {
    let hit = coveredCache.get(srcIPs);
    if (hit) return hit;
    const found = new Set<IndexedNode>();
    for (const e of srcIPs) {
      const one = subjectByIp.get(e);
      if (one) found.add(one);
      else if (!parseIp(e)) {
        const r = parseEntry(e);
        for (const n of subject) if (r === 'any' || (r !== undefined && n.ips.some((ip) => containsIp(r, ip)))) found.add(n);
      }
    }
    coveredCache.set(srcIPs, (hit = [...found]));
    return hit;
  };
  /** Tailnet nodes inside a source range, per range text (allow-all filters repeat the same few ranges). */
  const inRange = new Map<string, readonly IndexedNode[]>();
  const nodesIn = (entry: string, r: IpRange) => {
    let hit = inRange.get(entry);
    if (!hit) inRange.set(entry, (hit = r.lo === r.hi ? [topo.nodeByIp({ v6: r.v6, n: r.lo })].filter((m) => m !== undefined) : topo.nodes.filter((m) => m.ips.some((ip) => containsIp(r, ip)))));
    return hit;
  };

  /**
   * A destination address of node d's filter, named: d itself, a prefix it routes, or the internet through it;
   * `*` is everything d accepts traffic for (itself, its subnet routes, the internet when it is an exit node).
   */
  const dstNames = (entry: string, d: IndexedNode): string[] => {
    if (d.ipTexts.includes(entry)) return [d.name];
    const r = parseEntry(entry);
    if (r === 'any') return [d.name, ...d.subnetRoutes.map((p) => `${p.text} via ${d.name}`), ...(d.isExit ? [`the internet via ${d.name}`] : [])];
    if (r === undefined) return [`${entry} via ${d.name}`];
    // A prefix around d's own address (an ACL naming 100.64.0.0/24) is d itself; what d routes is reached through it.
    const self = d.ips.some((ip) => containsIp(r, ip)) ? [d.name] : [];
    const routed = d.subnetRoutes.some((p) => overlaps(p, r)) || self.length === 0;
    return [...self, ...(routed ? [isInternetRange(r) ? `the internet via ${d.name}` : `${entry} via ${d.name}`] : [])];
  };
  /** The sources of a filter rule as peers: tailnet ranges as the nodes in them, anything else as written (per SrcIPs array). */
  const peersCache = new WeakMap<readonly string[], readonly { peer: string; peerId?: number }[]>();
  const srcPeers = (rule: FilterRule, self: IndexedNode): { peer: string; peerId?: number }[] => {
    let peers = peersCache.get(rule.SrcIPs);
    if (!peers) {
      peers = rule.SrcIPs.flatMap((entry) => {
        const r = parseEntry(entry);
        if (r === 'any') return [{ peer: 'any address' }];
        if (r === undefined) return [{ peer: entry }];
        const tailnet = tailnetRanges.some((t) => overlaps(t, r));
        return [...nodesIn(entry, r).map((m) => ({ peer: m.name, peerId: m.id })), ...(tailnet ? [] : [{ peer: entry }])];
      });
      peersCache.set(rule.SrcIPs, peers);
    }
    return peers.filter((p) => p.peerId !== self.id);
  };

  const reaches = rows();
  const reachedBy = rows();
  const sshTo = rows();
  const sshFrom = rows();
  // Outbound: every node's view, once, for the rules whose sources include one of the subject's nodes. The
  // subject's nodes reaching each other stay in: a user's laptop reaching their server is access too.
  for (const d of topo.nodes) {
    const view = c.forNode(d.id);
    for (const rule of view.packetFilter) {
      const from = rule.DstPorts ? covered(rule.SrcIPs).filter((s) => s.id !== d.id) : [];
      if (from.length === 0) continue;
      const to = new Map<string, { first: number; last: number }[]>();
      for (const dp of rule.DstPorts!) for (const name of dstNames(dp.IP, d)) to.set(name, [...(to.get(name) ?? []), { first: dp.Ports.First, last: dp.Ports.Last }]);
      for (const s of from) for (const [name, ports] of to) reaches.add(name, d.id, s.name, protocols(rule), ports);
    }
    for (const rule of view.sshPolicy.rules) {
      const from = rule.principals.some((p) => 'any' in p) ? subject : rule.principals.map((p) => 'nodeIP' in p && subjectByIp.get(p.nodeIP));
      const users = sshUsers(rule);
      if (users === '') continue; // maps every requested user to no one: admits nothing
      for (const s of new Set(from)) if (s && s.id !== d.id) sshTo.add(d.name, d.id, s.name, sshAction(rule), users);
    }
  }
  // Inbound: the subject's own views.
  for (const s of subject) {
    const own = c.forNode(s.id);
    for (const rule of own.packetFilter) {
      if (!rule.DstPorts) continue;
      const ports = rule.DstPorts.filter((dp) => dstNames(dp.IP, s).includes(s.name)).map((dp) => ({ first: dp.Ports.First, last: dp.Ports.Last }));
      if (ports.length === 0) continue;
      for (const p of srcPeers(rule, s)) reachedBy.add(p.peer, p.peerId, s.name, protocols(rule), ports);
    }
    for (const rule of own.sshPolicy.rules) {
      if (sshUsers(rule) === '') continue;
      const from = rule.principals.flatMap((p): { peer: string; peerId?: number }[] => {
        if ('any' in p) return [{ peer: 'any address' }];
        const ip = parseIp(p.nodeIP);
        const m = ip && topo.nodeByIp(ip);
        return m && m.id !== s.id ? [{ peer: m.name, peerId: m.id }] : [];
      });
      for (const p of from) sshFrom.add(p.peer, p.peerId, s.name, sshAction(rule), sshUsers(rule));
    }
  }
  return { reaches: reaches.done(), reachedBy: reachedBy.done(), sshTo: sshTo.done(), sshFrom: sshFrom.done() };
}

/** Whom the view is about: a machine (by id), a user (by name), a group or a tag (as the policy names them). */
export type ReachSubject = { kind: 'node'; id: number } | { kind: 'user' | 'group' | 'tag'; name: string };

/** The nodes a subject stands for: a user's untagged nodes, a group's users' nodes, a tag's nodes. */
export function subjectNodes(c: CompiledPolicy, s: ReachSubject): number[] {
  const topo = c.topology;
  const owned = (user: string) => (topo.byUser.get(user) ?? []).map((n) => n.id);
  switch (s.kind) {
    case 'node':
      return topo.byId.has(s.id) ? [s.id] : [];
    case 'user':
      return owned(s.name);
    case 'group':
      return [...c.resolver.groupUsers(s.name)].flatMap(owned);
    case 'tag':
      return (topo.byTag.get(s.name) ?? []).map((n) => n.id);
  }
}
