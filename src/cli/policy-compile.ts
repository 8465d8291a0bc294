/** `policy compile` offline: what each node of a topology file receives from a policy, as JSON or a readable summary. */
import { compilePolicy, protoName, type FilterRule, type Policy, type SshPolicy, type Topology } from '../policy/index.ts';

/** One node's share of the compiled policy; packetFilter and sshPolicy are exactly what the server sends the node. */
export interface CompiledNode {
  readonly id: number;
  readonly node: string;
  readonly packetFilter: readonly FilterRule[];
  readonly sshPolicy: SshPolicy;
  /** Names of the nodes it sees as peers. */
  readonly peers: readonly string[];
  readonly capabilities: readonly string[];
}

export function compileNodes(policy: Policy, topology: Topology, opts: { nodes: readonly number[]; serverUrl?: string }): CompiledNode[] {
  const compiled = compilePolicy(policy, topology, { serverUrl: opts.serverUrl });
  const names = new Map(topology.nodes.map((n) => [n.id, n.name]));
  return opts.nodes.map((id) => {
    const v = compiled.forNode(id);
    const peers = v.peers.map((p) => names.get(p)!);
    return { id, node: names.get(id)!, packetFilter: v.packetFilter, sshPolicy: v.sshPolicy, peers, capabilities: v.capabilities };
  });
}

/** A summary per node for people: addresses shown as node names where the topology knows them. */
export function renderCompiled(nodes: readonly CompiledNode[], topology: Topology): string {
  const byIp = new Map(topology.nodes.flatMap((n) => [n.ipv4, n.ipv6].filter(Boolean).map((ip) => [ip, n.name] as const)));
  const who = (ips: readonly string[]) => [...new Set(ips.map((ip) => (ip === '*' ? 'any' : (byIp.get(ip) ?? ip))))].join(', ');
  return nodes
    .map((c) => {
      const n = topology.nodes.find((m) => m.id === c.id)!;
      const owner = n.tags.length > 0 ? n.tags.join(',') : (n.user ?? '-');
      const lines = [`${c.node} (id ${c.id}, ${owner}) ${[n.ipv4, n.ipv6].filter(Boolean).join(', ')}`];
      lines.push(`  peers: ${c.peers.join(', ') || 'none'}`);
      lines.push(`  accepts:${c.packetFilter.length === 0 ? ' nothing' : ''}`);
      for (const r of c.packetFilter) lines.push(`    ${filterLine(r, who)}`);
      lines.push(`  ssh:${c.sshPolicy.rules.length === 0 ? ' nothing' : ''}`);
      for (const r of c.sshPolicy.rules) lines.push(`    ${sshLine(r, who)}`);
      if (c.capabilities.length > 0) lines.push(`  capabilities: ${c.capabilities.join(', ')}`);
      return lines.join('\n');
    })
    .join('\n\n');
}

function filterLine(r: FilterRule, who: (ips: readonly string[]) => string): string {
  const proto = r.IPProto ? r.IPProto.map(protoName).join(',') : 'any';
  if (r.CapGrant) {
    const caps = r.CapGrant.flatMap((g) => Object.keys(g.CapMap)).join(', ');
    return `from ${who(r.SrcIPs)} grant ${caps} on ${r.CapGrant.flatMap((g) => g.Dsts).join(', ')}`;
  }
  const dsts = (r.DstPorts ?? []).map((d) => {
    // Every address of a node repeats its ports; naming the node folds them together below.
    const ports = d.Ports.First === 0 && d.Ports.Last === 65535 ? '*' : d.Ports.First === d.Ports.Last ? `${d.Ports.First}` : `${d.Ports.First}-${d.Ports.Last}`;
    return `${d.IP === '*' ? '*' : who([d.IP])}:${ports}`;
  });
  return `from ${who(r.SrcIPs)} to ${[...new Set(dsts)].join(', ')} ${proto}`;
}

function sshLine(r: SshPolicy['rules'][number], who: (ips: readonly string[]) => string): string {
  const from = who(r.principals.map((p) => ('any' in p ? '*' : p.nodeIP)));
  const users = Object.entries(r.sshUsers).map(([req, local]) => (local === '=' || local === req ? req : `${req}->${local || '(none)'}`)).join(', ');
  const action = r.action.accept ? 'accept' : r.action.reject ? 'reject' : r.action.holdAndDelegate ? 'check' : 'other';
  return `${action} from ${from} as ${users}`;
}
