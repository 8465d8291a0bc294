/** Access diff between two policies over one topology: who gains and who loses which ports to which node, for review. */
import { protoName } from './alias.ts';
import { compilePolicy, type CompiledPolicy } from './compile.ts';
import type { CompiledRule } from './rules.ts';
import type { IndexedNode, Topology } from './topology.ts';
import type { Alias, Policy, PortRange } from './types.ts';

export interface AccessChange {
  readonly change: 'gain' | 'loss';
  /** The source identity (a user, a tag set, or a literal prefix) and which of its nodes are affected. */
  /** `policy`: a change in the policy's own terms (a principal and a destination as the policy names them). */
  readonly src: { readonly kind: 'policy' | 'user' | 'tags' | 'ip'; readonly identity: string; readonly nodes: readonly string[] };
  /** Destination node name, a routed prefix / "autogroup:internet", or (kind `policy`) the destination as written. */
  readonly dst: string;
  /** "*", or a list like "22,80,1000-2000". */
  readonly ports: string;
  /** Protocol names joined by ",", e.g. "tcp,udp". */
  readonly proto: string;
}

/** proto number -> port ranges, per destination key, per source key. */
type Matrix = Map<string, Map<string, Map<number, PortRange[]>>>;

const DEFAULT_PROTOS = [6, 17, 1, 58];

/**
 * Computes the access changes from `before` to `after`: first in the policy's own terms (which principals gain or
 * lose which destinations and ports, whether or not a node exists for them yet), then per node unless `perNode`
 * is false (the per-node part is quadratic in the tailnet's size). Each part is sorted losses first, then by
 * destination and source.
 */
export function diffAccess(before: Policy, after: Policy, topology: Topology, { perNode = true } = {}): AccessChange[] {
  // Policy terms need the users only: compiling over every node took 0.3 s of a 10,000-node policy change.
  const compiledOver = perNode ? topology : { users: topology.users, nodes: [] };
  const [ca, cb] = [compilePolicy(before, compiledOver), compilePolicy(after, compiledOver)];
  const names = new Map(topology.nodes.map((n) => [`n:${n.id}`, n]));
  const nodeLevel = !perNode
    ? []
    : changes(matrix(ca), matrix(cb), (srcKey, dstKey) => ({
        src: identity(srcKey, names),
        dst: dstKey.startsWith('n:') ? names.get(dstKey)!.name : dstKey.slice(2),
      }));
  // Policy terms need rules on both sides: the default allow-all names no principals to compare with.
  const comparable = before.hasAccessRules && after.hasAccessRules;
  const describe: Describe = (srcKey, dstKey) => ({ src: { kind: 'policy', identity: srcKey, nodes: [] }, dst: dstKey });
  const policyLevel = comparable ? changes(policyMatrix(ca), policyMatrix(cb), describe, true) : [];
  return [...policyLevel, ...nodeLevel];
}

type Describe = (srcKey: string, dstKey: string) => { src: AccessChange['src']; dst: string };

/**
 * Gains and losses between two matrices, grouped by source, destination and ports (protocols joined). With
 * `wildcards` (policy terms), what the other side grants through `*` (as source, destination or both) covers a
 * named principal or destination: narrowing `*` to `group:ops` is a loss for the others, not a gain for ops.
 */
function changes(a: Matrix, b: Matrix, describe: Describe, wildcards = false): AccessChange[] {
  const covered = (m: Matrix, srcKey: string, dstKey: string, proto: number): PortRange[] =>
    !wildcards ? [] : [['*', '*'], ['*', dstKey], [srcKey, '*']].flatMap(([s, d]) => m.get(d!)?.get(s!)?.get(proto) ?? []);
  const groups = new Map<string, { change: AccessChange['change']; src: AccessChange['src']; dst: string; ports: string; protos: Set<number>; nodes: Set<string> }>();
  const record = (change: AccessChange['change'], srcKey: string, dstKey: string, proto: number, ranges: PortRange[]) => {
    const { src, dst } = describe(srcKey, dstKey);
    const ports = formatPorts(ranges);
    const key = [change, src.kind, src.identity, dst, ports].join('|');
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { change, src, dst, ports, protos: new Set(), nodes: new Set() }));
    g.protos.add(proto);
    for (const n of src.nodes) g.nodes.add(n);
  };
  for (const dstKey of new Set([...a.keys(), ...b.keys()])) {
    const [ma, mb] = [a.get(dstKey) ?? new Map(), b.get(dstKey) ?? new Map()];
    for (const srcKey of new Set([...ma.keys(), ...mb.keys()])) {
      const [pa, pb] = [ma.get(srcKey) ?? new Map<number, PortRange[]>(), mb.get(srcKey) ?? new Map<number, PortRange[]>()];
      for (const proto of new Set([...pa.keys(), ...pb.keys()])) {
        const [ra, rb] = [pa.get(proto) ?? [], pb.get(proto) ?? []];
        const gained = subtractRanges(rb, mergeRanges([...ra, ...covered(a, srcKey, dstKey, proto)]));
        const lost = subtractRanges(ra, mergeRanges([...rb, ...covered(b, srcKey, dstKey, proto)]));
        if (gained.length > 0) record('gain', srcKey, dstKey, proto, gained);
        if (lost.length > 0) record('loss', srcKey, dstKey, proto, lost);
      }
    }
  }
  return [...groups.values()]
    .map((g) => ({ change: g.change, src: { ...g.src, nodes: [...g.nodes].sort() }, dst: g.dst, ports: g.ports, proto: protoLabel(g.protos) }))
    .sort((x, y) => cmp(x.change === 'loss' ? 0 : 1, y.change === 'loss' ? 0 : 1) || cmp(x.dst, y.dst) || cmp(x.src.identity, y.src.identity) || cmp(x.proto, y.proto));
}

/**
 * Who may reach what as the policy says it, without the tailnet's nodes: sources as principals (a group as its
 * users, a user by name, anything else as written), destinations as written. A rule for a tag with no node yet
 * still shows here.
 */
function policyMatrix(c: CompiledPolicy): Matrix {
  const m: Matrix = new Map();
  const r = c.resolver;
  const principals = (a: Alias): string[] => {
    if (a.kind === 'group') return [...r.groupUsers(a.name)].map((u) => `user ${u}`);
    if (a.kind === 'user') return [`user ${r.userName(a)}`];
    return [a.text];
  };
  for (const rule of c.policy.rules) {
    for (const d of rule.dst) for (const spec of d.specs) for (const s of rule.src) for (const p of principals(s)) addTo(m, d.alias.text, p, spec.protos ?? DEFAULT_PROTOS, spec.ports);
  }
  return m;
}

function addTo(m: Matrix, dst: string, src: string, protos: readonly number[], ports: readonly PortRange[]): void {
  let bySrc = m.get(dst);
  if (!bySrc) m.set(dst, (bySrc = new Map()));
  let byProto = bySrc.get(src);
  if (!byProto) bySrc.set(src, (byProto = new Map()));
  for (const p of protos) byProto.set(p, mergeRanges([...(byProto.get(p) ?? []), ...ports]));
}

/** "any" for the client default set (TCP, UDP, ICMPv4, ICMPv6), else the names. */
export function protoLabel(protos: ReadonlySet<number>): string {
  if (protos.size === DEFAULT_PROTOS.length && DEFAULT_PROTOS.every((p) => protos.has(p))) return 'any';
  return [...protos].sort((x, y) => x - y).map(protoName).join(',');
}

const cmp = <T>(x: T, y: T) => (x < y ? -1 : x > y ? 1 : 0);

function identity(srcKey: string, names: Map<string, Topology['nodes'][number]>): AccessChange['src'] {
  if (!srcKey.startsWith('n:')) return { kind: 'ip', identity: srcKey.slice(2), nodes: [] };
  const n = names.get(srcKey)!;
  return n.tags.length > 0
    ? { kind: 'tags', identity: [...n.tags].sort().join(','), nodes: [n.name] }
    : { kind: 'user', identity: n.user ?? '(no owner)', nodes: [n.name] };
}

/** Who reaches what under one compiled policy, node by node (quadratic: meant for review, not the hot path). */
function matrix(c: CompiledPolicy): Matrix {
  const m: Matrix = new Map();
  const add = (dst: string, src: string, protos: readonly number[], ports: readonly PortRange[]) => addTo(m, dst, src, protos, ports);
  const nodes = c.topology.nodes;
  const rules: readonly CompiledRule[] = c.policy.hasAccessRules ? c.rules : [];
  if (!c.policy.hasAccessRules) {
    for (const d of [...nodes.map((n) => `n:${n.id}`), ...routeKeys(nodes)]) for (const s of nodes) if (`n:${s.id}` !== d) add(d, `n:${s.id}`, DEFAULT_PROTOS, [{ first: 0, last: 65535 }]);
  }
  for (const cr of rules) {
    const srcKeys = cr.src.all ? nodes.map((n) => `n:${n.id}`) : [...cr.src.ids].map((id) => `n:${id}`);
    const literal = cr.rule.src.flatMap((a) => c.resolver.prefixes(a)).map((p) => `p:${p.text}`);
    for (const d of cr.dsts) {
      const dstKeys = (() => {
        switch (d.target.kind) {
          case 'any':
            // `*` also reaches every approved subnet route (issue #21: moving to *:* gains 10.99.0.0/24).
            return [...nodes.map((n) => `n:${n.id}`), ...routeKeys(nodes)];
          case 'nodes':
            return nodes.filter((n) => d.target.kind === 'nodes' && d.target.ids.has(n.id)).map((n) => `n:${n.id}`);
          case 'prefix':
            return d.target.prefixes.map((p) => `p:${p.text}`);
          case 'internet':
            return ['p:autogroup:internet'];
          case 'self':
            return [];
        }
      })();
      for (const spec of d.specs) {
        const protos = spec.protos ?? DEFAULT_PROTOS;
        if (d.target.kind === 'self') {
          for (const own of c.topology.byUser.values()) {
            const srcs = own.filter((n) => cr.src.all || cr.src.ids.has(n.id));
            for (const dn of own) for (const sn of srcs) if (dn !== sn) add(`n:${dn.id}`, `n:${sn.id}`, protos, spec.ports);
          }
          continue;
        }
        for (const dk of dstKeys) for (const sk of [...srcKeys, ...literal]) if (sk !== dk) add(dk, sk, protos, spec.ports);
      }
    }
  }
  return m;
}

/** Approved subnet routes of the tailnet as destination keys, once each. */
const routeKeys = (nodes: readonly IndexedNode[]) => [...new Set(nodes.flatMap((n) => n.subnetRoutes.map((p) => `p:${p.text}`)))];

export function mergeRanges(rs: readonly PortRange[]): PortRange[] {
  const sorted = [...rs].sort((a, b) => a.first - b.first);
  const out: { first: number; last: number }[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.first <= last.last + 1) last.last = Math.max(last.last, r.last);
    else out.push({ ...r });
  }
  return out;
}

/** Ports in a but not in b (both merged). */
export function subtractRanges(a: readonly PortRange[], b: readonly PortRange[]): PortRange[] {
  let left = [...a];
  for (const h of b) {
    left = left.flatMap((x) => {
      if (h.last < x.first || x.last < h.first) return [x];
      const out: PortRange[] = [];
      if (x.first < h.first) out.push({ first: x.first, last: h.first - 1 });
      if (h.last < x.last) out.push({ first: h.last + 1, last: x.last });
      return out;
    });
  }
  return left;
}

export function formatPorts(rs: readonly PortRange[]): string {
  if (rs.length === 1 && rs[0]!.first === 0 && rs[0]!.last === 65535) return '*';
  return rs.map((r) => (r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`)).join(',');
}

/** One line per change, for code review: `+ policy user alice -> tag:db tcp:5432`, `+ user alice [laptop, phone] -> db-1 tcp:5432`. */
export function renderAccessDiff(changes: readonly AccessChange[]): string {
  if (changes.length === 0) return 'no access changes\n';
  return changes
    .map((c) => {
      const who = c.src.kind === 'policy' ? `policy ${c.src.identity}` : c.src.kind === 'ip' ? c.src.identity : `${c.src.kind === 'user' ? 'user ' : ''}${c.src.identity} [${c.src.nodes.join(', ')}]`;
      return `${c.change === 'gain' ? '+' : '-'} ${who} -> ${c.dst} ${c.proto}:${c.ports}\n`;
    })
    .join('');
}
