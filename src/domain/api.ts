/**
 * The admin API's JSON vocabulary (Headscale-compatible shapes), shared by the server that writes it and the
 * clients (CLI, engine, Terraform provider) that read it.
 */

export interface ApiUser {
  id: string;
  name: string;
  createdAt: string;
  displayName: string;
  email: string;
  providerId: string;
  provider: string;
  profilePicUrl: string;
}

export interface ApiNode {
  id: string;
  machineKey: string;
  nodeKey: string;
  discoKey: string;
  ipAddresses: string[];
  /** The client's hostname. */
  name: string;
  /** The MagicDNS label. */
  givenName: string;
  user: ApiUser | null;
  tags: readonly string[];
  lastSeen: string | null;
  expiry: string | null;
  expired: boolean;
  createdAt: string;
  registerMethod: string;
  ephemeral: boolean;
  /** Shown online to peers: connected, or connected when the server last stopped and not yet back (control/resume.ts). */
  online: boolean;
  /** Holding a map stream to control now. */
  connected: boolean;
  approvedRoutes: readonly string[];
  availableRoutes: readonly string[];
  subnetRoutes: readonly string[];
  os: string;
  clientVersion: string;
}

export interface ApiPreAuthKey {
  id: string;
  /** The full key only in the create response; `tpkey-auth-<prefix>-***` elsewhere. */
  key: string;
  user: ApiUser | null;
  reusable: boolean;
  ephemeral: boolean;
  used: boolean;
  expiration: string | null;
  createdAt: string;
  aclTags: readonly string[];
}

export interface ApiApiKey {
  id: string;
  prefix: string;
  role: string;
  expiration: string | null;
  createdAt: string;
  lastSeen: string | null;
}

export interface ApiError {
  code: number;
  message: string;
}

/** A routed prefix and the nodes that advertise or are approved for it (GET /api/v1/routes). */
export interface ApiRoute {
  prefix: string;
  /** 0.0.0.0/0 or ::/0: served by every approved exit node, never primary-routed. */
  exitRoute: boolean;
  routers: { nodeId: string; name: string; advertised: boolean; approved: boolean; primary: boolean; online: boolean }[];
}

/** A Tailscale SSH check as the admin API shows it (ids as strings, like every id of the API). */
export interface ApiSshCheck {
  id: string;
  state: 'pending' | 'approved' | 'denied' | 'timeout';
  srcNode: { id: string; name: string };
  srcUser: { id: string; name: string };
  dstNode: { id: string; name: string };
  sshUser: string;
  localUser: string;
  /** The check period an approval lasts, in seconds; 0 = this session only. */
  checkPeriodSeconds: number;
  createdAt: string;
  deadline: string;
  decidedAt: string | null;
  decidedBy: string | null;
  validUntil: string | null;
}
