/** The policy AST: Tailscale's policy file sections, with the source position of every alias and rule. */
import type { Pos } from './errors.ts';
import type { Prefix } from '../net/ip.ts';

export type { Pos } from './errors.ts';

export const AUTOGROUPS = ['member', 'tagged', 'self', 'internet', 'nonroot', 'danger-all', 'admin', 'owner'] as const;
export type AutogroupName = (typeof AUTOGROUPS)[number];

/** One parsed alias (a source, destination, owner or target); `text` is what the file says. */
export type Alias = { readonly text: string; readonly pos: Pos } & (
  | { readonly kind: 'wildcard' }
  | { readonly kind: 'user'; readonly name: string }
  /** `user:*@example.com`: every user whose e-mail address is in that domain. */
  | { readonly kind: 'domain'; readonly name: string }
  | { readonly kind: 'group'; readonly name: string }
  | { readonly kind: 'tag'; readonly name: string }
  | { readonly kind: 'host'; readonly name: string }
  | { readonly kind: 'prefix'; readonly prefix: Prefix }
  | { readonly kind: 'ipset'; readonly name: string }
  | { readonly kind: 'autogroup'; readonly name: AutogroupName }
);

/** Inclusive port range; `*` is 0-65535. */
export interface PortRange {
  readonly first: number;
  readonly last: number;
}

/** A protocol/port selector: an ACL's proto with one destination's ports, or one `ip` entry of a grant. */
export interface IpSpec {
  /** IANA protocol numbers; undefined means the client default (TCP, UDP, ICMPv4, ICMPv6). */
  readonly protos: readonly number[] | undefined;
  readonly ports: readonly PortRange[];
}

export interface Destination {
  readonly alias: Alias;
  readonly specs: readonly IpSpec[];
  readonly pos: Pos;
}

/** ACLs and grants both compile from this shape (an ACL is a grant whose destinations carry their own ports). */
export interface AccessRule {
  readonly source: 'acls' | 'grants';
  readonly pos: Pos;
  readonly src: readonly Alias[];
  readonly dst: readonly Destination[];
  /** Grant `app` capabilities (CapGrant rules). */
  readonly app: Readonly<Record<string, readonly unknown[]>> | undefined;
  readonly via: readonly Alias[];
}

export interface SshUser {
  readonly text: string;
  readonly pos: Pos;
}

export interface SshRule {
  readonly pos: Pos;
  readonly action: 'accept' | 'check';
  readonly src: readonly Alias[];
  readonly dst: readonly Alias[];
  readonly users: readonly SshUser[];
  /** Check period in milliseconds; 0 = "always"; undefined = default (12h) or not a check rule. */
  readonly checkPeriodMs: number | undefined;
  readonly acceptEnv: readonly string[];
}

export interface NamedList {
  readonly pos: Pos;
  readonly members: readonly Alias[];
}

export interface Host {
  readonly pos: Pos;
  readonly prefix: Prefix;
}

export interface AutoApprovers {
  readonly routes: readonly { readonly prefix: Prefix; readonly pos: Pos; readonly approvers: readonly Alias[] }[];
  readonly exitNode: readonly Alias[];
}

export interface NodeAttr {
  readonly pos: Pos;
  readonly target: readonly Alias[];
  readonly attr: readonly { readonly text: string; readonly pos: Pos }[];
  /** Address pools (within 100.64.0.0/10) for the targets' new addresses; validated, see README. */
  readonly ipPool: readonly Prefix[];
}

export interface TestDst {
  readonly alias: Alias;
  readonly port: PortRange;
  readonly text: string;
  readonly pos: Pos;
}

export interface AccessTest {
  readonly pos: Pos;
  readonly src: Alias;
  readonly protos: readonly number[] | undefined;
  readonly protoText: string | undefined;
  readonly accept: readonly TestDst[];
  readonly deny: readonly TestDst[];
}

export interface SshTest {
  readonly pos: Pos;
  readonly src: Alias;
  readonly dst: readonly Alias[];
  readonly accept: readonly SshUser[];
  readonly check: readonly SshUser[];
  readonly deny: readonly SshUser[];
}

export interface Policy {
  readonly file: string;
  readonly groups: ReadonlyMap<string, NamedList>;
  readonly hosts: ReadonlyMap<string, Host>;
  readonly tagOwners: ReadonlyMap<string, NamedList>;
  readonly ipsets: ReadonlyMap<string, NamedList>;
  /** ACLs first, then grants, each in file order. */
  readonly rules: readonly AccessRule[];
  /** False when the file has neither `acls` nor `grants`: then everything is allowed (Tailscale's default). */
  readonly hasAccessRules: boolean;
  readonly ssh: readonly SshRule[];
  readonly autoApprovers: AutoApprovers;
  readonly nodeAttrs: readonly NodeAttr[];
  readonly tests: readonly AccessTest[];
  readonly sshTests: readonly SshTest[];
  readonly randomizeClientPort: boolean;
  readonly disableIPv4: boolean;
}
