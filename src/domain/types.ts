/**
 * The tailnet's vocabulary: the records every layer (store, state, policy, control, admin, engine) shares.
 * Plain immutable data; no I/O here.
 */

import type { Role } from './roles.ts';

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
  /** The OIDC identity (issuer and subject) that logs in as this user, when it came from an identity provider. */
  readonly providerId?: string;
  /**
   * The groups the identity provider reported at this user's last OIDC login (its groups claim), sorted; they
   * count as members of the policy's groups of the same name when `oidc.policy_groups` is on.
   */
  readonly idpGroups?: readonly string[];
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
  /** What the key may change: admin, network-admin, it-admin or auditor (src/auth/roles.ts). */
  readonly role: Role;
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

/** Where a Tailscale SSH check stands: waiting for a person, or decided (approved, denied, or nobody answered). */
export type SshCheckState = 'pending' | 'approved' | 'denied' | 'timeout';

/**
 * One Tailscale SSH "check": a session that a destination node holds until a person approves it. Names are
 * copied in (not only ids) so the record still says who and where after a node or user is gone.
 */
export interface SshCheck {
  /** Random public id: in the URL the destination node polls and in `tailplane ssh approve <id>`. */
  readonly id: string;
  readonly srcNodeId: number;
  readonly srcNode: string;
  readonly srcUserId: number;
  /** The source user's login name (e-mail or name). */
  readonly srcUser: string;
  readonly dstNodeId: number;
  readonly dstNode: string;
  /** The user name the ssh client asked for, and the local account it maps to on the destination. */
  readonly sshUser: string;
  readonly localUser: string;
  readonly state: SshCheckState;
  /** How long an approval lets later sessions through without a new check; 0 = this session only. */
  readonly periodMs: number;
  readonly createdAt: string;
  /** When a pending check times out. */
  readonly deadline: string;
  readonly decidedAt: string | null;
  /** Who approved or denied it (e.g. `api-key:<prefix>`); null for a timeout. */
  readonly decidedBy: string | null;
  /** Until when an approval admits later sessions of the same user to the same node; null when it does not. */
  readonly validUntil: string | null;
}
