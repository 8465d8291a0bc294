/**
 * The control protocol's JSON vocabulary (tailcfg): the requests clients send and the responses and netmap
 * objects the server builds. Field names are Go's exactly; optional fields are omitted, never "" (trap T16).
 */
import type { FilterRule, SshPolicy } from '../policy/index.ts';
import type { DerpMap } from '../derp/index.ts';

export interface RegisterRequest {
  Version: number;
  NodeKey: string;
  OldNodeKey?: string;
  Auth?: { AuthKey?: string } | null;
  /** Zero time = no request; a past time = logout. */
  Expiry?: string;
  Followup?: string;
  Hostinfo?: Hostinfo | null;
  Ephemeral?: boolean;
}

export interface Hostinfo {
  Hostname?: string;
  OS?: string;
  RoutableIPs?: string[];
  RequestTags?: string[];
  NetInfo?: { PreferredDERP?: number } & Record<string, unknown>;
  [field: string]: unknown;
}

export interface WireUser {
  ID: number;
  DisplayName: string;
  Created?: string;
}

export interface WireLogin {
  ID: number;
  Provider: string;
  LoginName: string;
  DisplayName: string;
}

export interface RegisterResponse {
  User?: WireUser;
  Login?: WireLogin;
  NodeKeyExpired?: boolean;
  MachineAuthorized?: boolean;
  AuthURL?: string;
  /** Shown to the person running `tailscale up` as "backend error: …" (trap T35). */
  Error?: string;
}

export interface MapRequest {
  Version: number;
  Compress?: string;
  KeepAlive?: boolean;
  NodeKey: string;
  DiscoKey?: string;
  Stream?: boolean;
  OmitPeers?: boolean;
  Hostinfo?: Hostinfo | null;
  Endpoints?: string[] | null;
  EndpointTypes?: number[] | null;
}

export interface WireNode {
  ID: number;
  StableID: string;
  /** MagicDNS FQDN with a trailing dot (trap T32). */
  Name: string;
  User: number;
  Key: string;
  KeyExpiry?: string;
  Machine: string;
  DiscoKey?: string;
  Addresses: string[];
  AllowedIPs: string[];
  Endpoints?: string[];
  HomeDERP?: number;
  Hostinfo: Hostinfo;
  Created: string;
  Cap?: number;
  Tags?: string[];
  PrimaryRoutes?: string[];
  LastSeen?: string;
  Online?: boolean;
  MachineAuthorized: boolean;
  CapMap?: Record<string, unknown[] | null>;
  Expired?: boolean;
}

/** The fields PeersChangedPatch can carry; NodeID plus only what changed. */
export interface PeerPatch {
  NodeID: number;
  DERPRegion?: number;
  Endpoints?: string[];
  Key?: string;
  DiscoKey?: string;
  Online?: boolean;
  LastSeen?: string;
  KeyExpiry?: string;
}

export interface UserProfile {
  ID: number;
  LoginName: string;
  DisplayName: string;
}

export interface DnsResolver {
  Addr: string;
}

export interface DnsConfig {
  Proxied?: boolean;
  Domains?: string[];
  Resolvers?: DnsResolver[];
  FallbackResolvers?: DnsResolver[];
  Routes?: Record<string, DnsResolver[] | null>;
  ExtraRecords?: { Name: string; Type?: string; Value: string }[];
  /** Names (FQDN, no trailing dot) the server helps get TLS certificates for, through /machine/set-dns. */
  CertDomains?: string[];
}

export interface MapResponse {
  KeepAlive?: boolean;
  Node?: WireNode;
  DERPMap?: DerpMap;
  Peers?: WireNode[];
  PeersChanged?: WireNode[];
  PeersRemoved?: number[];
  PeersChangedPatch?: PeerPatch[];
  PacketFilter?: readonly FilterRule[];
  DNSConfig?: DnsConfig;
  Domain?: string;
  UserProfiles?: UserProfile[];
  SSHPolicy?: SshPolicy;
  CollectServices?: boolean;
  ControlTime?: string;
  Debug?: { DisableLogTail?: boolean };
}
