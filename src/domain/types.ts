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
}

export interface ApiKey {
  readonly id: number;
  readonly prefix: string;
  readonly expiration: string | null;
  readonly lastSeen: string | null;
  readonly createdAt: string;
}

/** DNS settings of the tailnet (MagicDNS and what clients get in DNSConfig). */
export interface DnsSettings {
  readonly magicDns: boolean;
  readonly baseDomain: string;
  /** Global resolvers: IP addresses (IP:port for a resolver on another port) or DoH https:// URLs. */
  readonly nameservers: readonly string[];
  /**
   * "Override local DNS": true sends the nameservers as the client's resolvers for every name; false offers
   * them only as fallbacks, and clients keep their own DNS for names outside MagicDNS and split DNS.
   */
  readonly overrideLocalDns: boolean;
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
