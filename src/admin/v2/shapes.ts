/**
 * API v2's JSON shapes, field for field as Tailscale's API documents them (and its Go client decodes them):
 * devices, auth keys and users.
 */
import type { Node, PreAuthKey, User } from '../../domain/types.ts';
import type { Tailnet } from '../../state/tailnet.ts';

/** The user Tailscale names as the owner of tagged devices. */
export const taggedDevicesLogin = 'tagged-devices';

/** What Tailscale sends for "no time" in a non-null time field (key expiry disabled). */
const zeroTime = '0001-01-01T00:00:00Z';

const str = (v: unknown) => (typeof v === 'string' ? v : '');

/** Fields of a device that a list can be filtered by (`?os=linux&tags=tag:web`). */
export const deviceFilterFields: ReadonlySet<string> = new Set(
  'addresses id nodeId authorized user tags keyExpiryDisabled blocksIncomingConnections clientVersion hostname isEphemeral isExternal connectedToControl machineKey name nodeKey os updateAvailable'.split(' '),
);

export function deviceJson(n: Node, t: Tailnet, all: boolean) {
  const owner = n.userId !== null ? t.users.get(n.userId) : undefined;
  const online = t.nodes.isOnline(n.id);
  const hi = n.hostinfo;
  const device = {
    addresses: [n.ipv4, n.ipv6],
    id: String(n.id),
    nodeId: String(n.id),
    authorized: true,
    user: owner?.name ?? taggedDevicesLogin,
    tags: n.tags,
    keyExpiryDisabled: n.expiry === null,
    blocksIncomingConnections: hi.ShieldsUp === true,
    clientVersion: str(hi.IPNVersion),
    created: n.createdAt,
    expires: n.expiry ?? zeroTime,
    hostname: n.hostname,
    isEphemeral: n.ephemeral,
    isExternal: false,
    connectedToControl: t.nodes.isConnected(n.id),
    lastSeen: online ? new Date().toISOString() : n.lastSeen,
    machineKey: n.machineKey,
    name: `${n.givenName}.${t.dns().baseDomain}`,
    nodeKey: n.nodeKey,
    os: str(hi.OS),
    tailnetLockError: '',
    tailnetLockKey: '',
    updateAvailable: false,
  };
  if (!all) return device;
  return {
    ...device,
    advertisedRoutes: n.availableRoutes,
    enabledRoutes: n.approvedRoutes,
    sshEnabled: Array.isArray(hi.SSH_HostKeys) && hi.SSH_HostKeys.length > 0,
    clientConnectivity: {
      endpoints: n.endpoints.map((e) => e.addr),
      derp: '',
      mappingVariesByDestIP: false,
      latency: {},
      clientSupports: { hairPinning: false, ipv6: false, pcp: false, pmp: false, udp: true, upnp: false },
    },
    distro: { name: str(hi.Distro), version: str(hi.DistroVersion), codeName: str(hi.DistroCodeName) },
  };
}

export function keyJson(k: PreAuthKey, now: Date, fullKey?: string) {
  const expired = k.expiration !== null && Date.parse(k.expiration) <= now.getTime();
  return {
    id: String(k.id),
    keyType: 'auth',
    ...(fullKey !== undefined ? { key: fullKey } : {}),
    description: k.description,
    created: k.createdAt,
    ...(k.expiration !== null
      ? { expires: k.expiration, expirySeconds: Math.round((Date.parse(k.expiration) - Date.parse(k.createdAt)) / 1000) }
      : {}),
    invalid: expired || (k.used && !k.reusable),
    // Every device joins authorized (tailplane has no device approval), so every key is pre-authorized.
    capabilities: { devices: { create: { reusable: k.reusable, ephemeral: k.ephemeral, tags: k.tags, preauthorized: true } } },
    userId: k.userId !== null ? String(k.userId) : '',
  };
}

export function userJson(u: User, t: Tailnet) {
  const nodes = t.nodes.list().filter((n) => n.userId === u.id);
  const seen = nodes
    .map((n) => n.lastSeen)
    .filter((s): s is string => s !== null)
    .sort();
  const connected = nodes.some((n) => t.nodes.isOnline(n.id));
  const lastSeen = connected ? new Date().toISOString() : seen.at(-1);
  return {
    id: String(u.id),
    displayName: u.displayName || u.name,
    loginName: u.name,
    profilePicUrl: '',
    tailnetId: '-',
    created: u.createdAt,
    type: 'member',
    role: 'member',
    status: 'active',
    deviceCount: nodes.length,
    ...(lastSeen !== undefined ? { lastSeen } : {}),
    currentlyConnected: connected,
  };
}
