/**
 * Builds netmap pieces from the tailnet: a node as clients see it (self or peer), user profiles, the DNS
 * config and the full first MapResponse of a stream.
 */
import { isExitRoute, servingRoutes } from '../domain/routes.ts';
import type { DnsSettings, Node, User } from '../domain/types.ts';
import type { DerpMap } from '../derp/index.ts';
import type { NodeView } from '../policy/index.ts';
import type { Tailnet } from '../state/tailnet.ts';
import type { DnsConfig, Hostinfo, MapResponse, UserProfile, WireNode } from './wire.ts';

/** Tagged nodes belong to no person; clients still need a user id and profile for them (trap T19, T22). */
export const taggedDevices: UserProfile = { ID: 2147455555, LoginName: 'tagged-devices', DisplayName: 'Tagged Devices' };

export function loginName(u: User): string {
  return u.email || u.name;
}

export function userProfile(u: User): UserProfile {
  return { ID: u.id, LoginName: loginName(u), DisplayName: u.displayName || u.name };
}

export function isExpired(n: Node, now: number): boolean {
  return n.expiry !== null && Date.parse(n.expiry) <= now;
}

/**
 * Granted to every node, as Tailscale does: without it a client's MagicDNS answers AAAA queries for peers that
 * also have an IPv4 address with no records (tailcfg.NodeAttrMagicDNSPeerAAAA, capability version 116).
 */
const selfDnsCaps = { 'magicdns-aaaa': null };

/** What the netmap builder needs besides the tailnet itself. */
export interface NetmapContext {
  readonly tailnet: Tailnet;
  readonly derpMap: () => DerpMap;
  /** The prefixes for which each node is the primary subnet router. */
  readonly primaryRoutes: (nodeId: number) => readonly string[];
  /** HTTPS certificates are on: each node's DNS config names its FQDN in CertDomains. */
  readonly certificates: boolean;
}

/** The node as tailcfg.Node; `self` adds what only the node itself gets (capabilities, authorization). */
export function wireNode(ctx: NetmapContext, n: Node, view?: NodeView): WireNode {
  const dns = ctx.tailnet.dns();
  const hostinfo = n.hostinfo as Hostinfo;
  const primary = ctx.primaryRoutes(n.id);
  const exit = servingRoutes(n).filter(isExitRoute);
  const addresses = [`${n.ipv4}/32`, `${n.ipv6}/128`];
  const online = ctx.tailnet.nodes.isOnline(n.id);
  const expired = isExpired(n, Date.now());
  const w: WireNode = {
    ID: n.id,
    StableID: String(n.id),
    Name: `${n.givenName}.${dns.baseDomain}.`,
    User: n.userId ?? taggedDevices.ID,
    Key: n.nodeKey,
    Machine: n.machineKey,
    Addresses: addresses,
    AllowedIPs: [...addresses, ...primary, ...exit],
    Hostinfo: hostinfo,
    Created: n.createdAt,
    MachineAuthorized: !expired,
    Online: online,
  };
  if (n.expiry) w.KeyExpiry = n.expiry;
  if (expired) w.Expired = true;
  if (n.discoKey) w.DiscoKey = n.discoKey;
  if (n.endpoints.length) w.Endpoints = n.endpoints.map((e) => e.addr);
  const home = hostinfo.NetInfo?.PreferredDERP;
  if (typeof home === 'number' && home > 0) w.HomeDERP = home;
  if (n.tags.length) w.Tags = [...n.tags];
  if (primary.length) w.PrimaryRoutes = [...primary];
  if (!online && n.lastSeen) w.LastSeen = n.lastSeen;
  if (view) w.CapMap = { 'https://tailscale.com/cap/ssh': null, ...selfDnsCaps, ...(view.capMap as Record<string, unknown[]>) };
  return w;
}

export function profileOf(t: Tailnet, n: Node): UserProfile {
  return n.userId === null ? taggedDevices : userProfile(t.users.get(n.userId));
}

/** The FQDN (lower case, no final dot) `tailscale cert` may ask a certificate for: the node's MagicDNS name. */
export const certDomain = (d: DnsSettings, n: Node): string => `${n.givenName}.${d.baseDomain}`.toLowerCase().replace(/\.$/, '');

/** The DNS config a node gets: the tailnet's settings, plus its own name in CertDomains when certificates are on. */
export function nodeDnsConfig(ctx: NetmapContext, self: Node): DnsConfig {
  const d = ctx.tailnet.dns();
  const out = dnsConfig(d);
  if (ctx.certificates) out.CertDomains = [certDomain(d, self)];
  return out;
}

function dnsConfig(d: DnsSettings): DnsConfig {
  const routes: Record<string, { Addr: string }[] | null> = {};
  for (const [domain, resolvers] of Object.entries(d.splitDns)) {
    routes[domain.endsWith('.') ? domain : `${domain}.`] = resolvers.map((Addr) => ({ Addr }));
  }
  const resolvers = d.nameservers.map((Addr) => ({ Addr }));
  const out: DnsConfig = {
    Proxied: d.magicDns,
    // The base domain is a search domain only with MagicDNS on, so short names resolve (as on Tailscale).
    Domains: [...(d.magicDns ? [d.baseDomain] : []), ...d.searchDomains],
    Routes: routes,
    ExtraRecords: d.extraRecords.map((r) => ({ Name: r.name, Type: r.type, Value: r.value })),
  };
  // "Override local DNS" off: the nameservers only back up split DNS; the device keeps its own resolvers.
  if (d.overrideLocalDns) out.Resolvers = resolvers;
  else out.FallbackResolvers = resolvers;
  return out;
}

/** Peers a node may see: in its policy view, known to the tailnet and with a disco key (trap T18). */
export function visiblePeers(t: Tailnet, view: NodeView): Node[] {
  const out: Node[] = [];
  for (const id of view.reach) {
    if (id === view.nodeId) continue;
    const n = t.nodes.find(id);
    if (n && n.discoKey) out.push(n);
  }
  return out;
}

/**
 * The first frame of a stream as an object: everything the client needs, including the self Node (trap T13).
 * The mapper sends fullMapParts with its peers' cached JSON, which must be exactly JSON.stringify of this, byte for
 * byte (test/control/map-encoding.test.ts).
 */
export function fullMap(ctx: NetmapContext, self: Node, view: NodeView): MapResponse {
  const peers = visiblePeers(ctx.tailnet, view);
  const res: MapResponse = { ...mapHead(ctx, self, view, peers), ControlTime: new Date().toISOString(), Debug: { DisableLogTail: true } };
  // A non-empty Peers replaces the client's peer set; an empty one means nothing (trap T21).
  if (peers.length) res.Peers = peers.map((p) => wireNode(ctx, p)).sort((a, b) => a.ID - b.ID);
  return res;
}

/** The full map's members before ControlTime, in the order clients have always received them. */
function mapHead(ctx: NetmapContext, self: Node, view: NodeView, peers: readonly Node[]): MapResponse {
  const t = ctx.tailnet;
  const profiles = new Map<number, UserProfile>();
  for (const n of [self, ...peers]) {
    const p = profileOf(t, n);
    profiles.set(p.ID, p);
  }
  return {
    Node: wireNode(ctx, self, view),
    DERPMap: ctx.derpMap(),
    Domain: t.dns().baseDomain,
    PacketFilter: view.packetFilter,
    SSHPolicy: view.sshPolicy,
    DNSConfig: nodeDnsConfig(ctx, self),
    UserProfiles: [...profiles.values()],
    CollectServices: false,
  };
}

/** The JSON of a value that many views share by identity (a packet filter, an SSH policy, the DERP map), cached. */
export type SharedJson = (value: unknown) => string | undefined;

/**
 * A full map's JSON in parts: `open + packet filter + afterFilter + peers' JSON joined with commas + close` is
 * the whole text. The packet filter is left to the caller, which has it in pieces shared between nodes.
 */
export interface FullMapParts {
  readonly head: MapResponse;
  /** The visible peers, by id. */
  readonly peers: readonly Node[];
  readonly open: string;
  readonly afterFilter: string;
  readonly close: string;
}

/**
 * fullMap's JSON text, byte for byte, built from pieces: the peers' JSON is encoded once per change and only
 * copied into a map, so a full map for N peers costs copying rather than encoding N nodes again.
 */
export function fullMapParts(ctx: NetmapContext, self: Node, view: NodeView, json: SharedJson, controlTime: string): FullMapParts {
  const peers = visiblePeers(ctx.tailnet, view);
  const head = mapHead(ctx, self, view, peers);
  peers.sort((a, b) => a.id - b.id);
  const before = objectJson([
    ['Node', JSON.stringify(head.Node)],
    ['DERPMap', json(head.DERPMap)],
    ['Domain', JSON.stringify(head.Domain)],
  ]);
  const after = objectJson([
    ['SSHPolicy', json(head.SSHPolicy)],
    ['DNSConfig', JSON.stringify(head.DNSConfig)],
    ['UserProfiles', JSON.stringify(head.UserProfiles)],
    ['CollectServices', 'false'],
    ['ControlTime', JSON.stringify(controlTime)],
    ['Debug', '{"DisableLogTail":true}'],
  ]);
  const open = `${before.slice(0, -1)},"PacketFilter":`;
  // Peers comes last, as in fullMap; without peers it is left out (trap T21).
  if (!peers.length) return { head, peers, open, afterFilter: `,${after.slice(1)}`, close: '' };
  return { head, peers, open, afterFilter: `,${after.slice(1, -1)},"Peers":[`, close: ']}' };
}

/** A JSON object from members whose values are already JSON text; undefined values are left out, as JSON.stringify does. */
export function objectJson(members: readonly (readonly [string, string | undefined])[]): string {
  let out = '';
  for (const [key, value] of members) if (value !== undefined) out += `${out ? ',' : ''}"${key}":${value}`;
  return `{${out}}`;
}
