/**
 * The tailnet's vocabulary: the records every layer (store, state, policy, control, admin, engine) shares.
 * Plain immutable data; no I/O here.
 */

/** Numeric ids are the database row ids; they are what clients see as Node.ID / User.ID (never 0). */
export type NodeId = number;
export type UserId = number;

export interface User {
  readonly id: UserId;
  /** Unique login name, e.g. "alice" or "alice@example.com". */
  readonly name: string;
  readonly displayName: string;
  readonly email: string;
  readonly createdAt: string; // RFC 3339
}

export type RegisterMethod = 'authkey' | 'interactive' | 'cli';

export interface Endpoint {
  readonly addr: string; // "ip:port"
  readonly type: number; // tailcfg.EndpointType (1 local, 2 stun, …)
}

export interface Node {
  readonly id: NodeId;
  /** "mkey:<64 hex>" */
  readonly machineKey: string;
  /** "nodekey:<64 hex>" */
  readonly nodeKey: string;
  /** "discokey:<64 hex>", or "" until the node's first map request. */
  readonly discoKey: string;
  readonly ipv4: string;
  readonly ipv6: string;
  /** What the client calls itself (Hostinfo.Hostname). */
  readonly hostname: string;
  /** DNS label, unique in the tailnet; set from the hostname, renamable by an admin. */
  readonly givenName: string;
  /** Owner: exactly one of userId or a non-empty tags list (tags XOR user). */
  readonly userId: UserId | null;
  readonly tags: readonly string[];
  /** The client's Hostinfo JSON, passed through to peers. */
  readonly hostinfo: Record<string, unknown>;
  readonly endpoints: readonly Endpoint[];
  /** RFC 3339, or null for "never expires". */
  readonly expiry: string | null;
  readonly lastSeen: string | null;
  readonly createdAt: string;
  readonly registerMethod: RegisterMethod;
  readonly ephemeral: boolean;
  /** Routes the client advertises (Hostinfo.RoutableIPs) and those an admin or autoApprovers approved. */
  readonly availableRoutes: readonly string[];
  readonly approvedRoutes: readonly string[];
}

/** Key lifetime given when a node's key expiry is turned back on: Tailscale's default of 180 days. */
export const defaultKeyLifetimeMs = 180 * 86_400_000;

export interface PreAuthKey {
  readonly id: number;
  /** Public part shown in lists ("tskey-auth-<prefix>"); the secret is only stored hashed. */
  readonly prefix: string;
  readonly userId: UserId | null;
  readonly reusable: boolean;
  readonly ephemeral: boolean;
  readonly used: boolean;
  readonly tags: readonly string[];
  readonly expiration: string | null;
  readonly createdAt: string;
  /** Free text for people (API v2's `description`); '' when none was given. */
  readonly description: string;
}

export interface ApiKey {
  readonly id: number;
  readonly prefix: string;
  readonly expiration: string | null;
  readonly lastSeen: string | null;
  readonly createdAt: string;
}

/**
 * An OAuth client (API v2's client credentials): its id is the public prefix of its secret, which is stored
 * hashed; it may obtain access tokens for its scopes only.
 */
export interface OAuthClient {
  readonly id: number;
  /** The client id people and tools use (`client_id`). */
  readonly prefix: string;
  readonly scopes: readonly string[];
  readonly description: string;
  readonly createdAt: string;
}

/** A short-lived access token an OAuth client obtained; stored hashed, valid until `expiresAt`. */
export interface OAuthToken {
  readonly id: number;
  readonly prefix: string;
  /** Row id of the OAuth client; deleting the client revokes its tokens. */
  readonly clientId: number;
  readonly scopes: readonly string[];
  readonly expiresAt: string;
}

/** DNS settings of the tailnet (MagicDNS and what clients get in DNSConfig). */
export interface DnsSettings {
  readonly magicDns: boolean;
  readonly baseDomain: string;
  readonly nameservers: readonly string[];
  /** Split DNS: domain -> resolvers. */
  readonly splitDns: Readonly<Record<string, readonly string[]>>;
  readonly searchDomains: readonly string[];
  /** Extra records: { name, type: "A" | "AAAA", value }. */
  readonly extraRecords: readonly { name: string; type: 'A' | 'AAAA'; value: string }[];
}

export interface PolicyRecord {
  readonly text: string;
  readonly updatedAt: string;
}
