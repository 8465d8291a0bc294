/** Typed policy references (the aliases a rule can name) and the places each kind may appear, as in src/policy/validate.ts. */

export type RefKind =
  | 'user' | 'group' | 'tag' | 'host' | 'prefix' | 'node' | 'wildcard'
  | 'autogroup:member' | 'autogroup:tagged' | 'autogroup:self' | 'autogroup:internet' | 'autogroup:nonroot';

/** Anything a policy can name; `alias` is the text the policy file writes for it. */
export interface PolicyRef<K extends RefKind = RefKind> {
  readonly refKind: K;
  readonly alias: string;
}

// Each place admits only the kinds Tailscale allows there, so a misplaced alias is a type error.
export type AclSource = PolicyRef<'user' | 'group' | 'tag' | 'host' | 'prefix' | 'node' | 'wildcard' | 'autogroup:member' | 'autogroup:tagged'>;
export type AclTarget = PolicyRef<Exclude<RefKind, 'autogroup:nonroot'>>;
export type SshSource = PolicyRef<'user' | 'group' | 'tag' | 'autogroup:member' | 'autogroup:tagged'>;
export type SshTarget = PolicyRef<'user' | 'tag' | 'autogroup:member' | 'autogroup:tagged' | 'autogroup:self'>;
export type TestSource = PolicyRef<'user' | 'group' | 'tag' | 'host' | 'prefix' | 'node'>;
export type TestTarget = PolicyRef<'user' | 'group' | 'tag' | 'host' | 'prefix' | 'node' | 'autogroup:internet'>;
export type TagOwner = PolicyRef<'user' | 'group' | 'tag'>;
export type TagRef = PolicyRef<'tag'>;
export type UserRef = PolicyRef<'user'>;
/** A login name on the target machine, or autogroup:nonroot. */
export type SshLogin = string | PolicyRef<'autogroup:nonroot'>;

/** A target with ports, as an ACL destination writes it ("tag:db:5432"). */
export interface Ports<T extends AclTarget = AclTarget> {
  readonly target: T;
  readonly ports: string;
}

/** A target with exactly one port: the only form a policy test accepts. */
export interface Port<T extends AclTarget = AclTarget> extends Ports<T> {
  readonly port: number;
}

function checkPort(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new RangeError(`port ${n} is not in 0-65535`);
  return n;
}

/** The port helpers every target offers, as free functions the target classes delegate to. */
export const portsOf = {
  one: <T extends AclTarget>(target: T, n: number): Port<T> => ({ target, ports: String(checkPort(n)), port: n }),
  many: <T extends AclTarget>(target: T, ns: number[]): Ports<T> => ({ target, ports: ns.map(checkPort).join(',') }),
  range: <T extends AclTarget>(target: T, first: number, last: number): Ports<T> => ({ target, ports: `${checkPort(first)}-${checkPort(last)}` }),
};

/** The destination text of a target with or without ports ("*:*" for a bare target). */
export function destinationText(d: AclTarget | Ports): string {
  return 'target' in d ? `${d.target.alias}:${d.ports}` : `${d.alias}:*`;
}

/** A reference that is not a construct: autogroups, "*", CIDRs, and names of things declared elsewhere. */
export class Ref<K extends RefKind> implements PolicyRef<K> {
  constructor(
    readonly refKind: K,
    readonly alias: string,
  ) {}
  port(this: Ref<K & AclTarget['refKind']>, n: number): Port<Ref<K & AclTarget['refKind']>> {
    return portsOf.one(this, n);
  }
  ports(this: Ref<K & AclTarget['refKind']>, ...ns: number[]): Ports<Ref<K & AclTarget['refKind']>> {
    return portsOf.many(this, ns);
  }
  portRange(this: Ref<K & AclTarget['refKind']>, first: number, last: number): Ports<Ref<K & AclTarget['refKind']>> {
    return portsOf.range(this, first, last);
  }
}

/** Tailscale's autogroups, each typed for the places it may appear. */
export const Autogroup = {
  member: new Ref('autogroup:member', 'autogroup:member'),
  tagged: new Ref('autogroup:tagged', 'autogroup:tagged'),
  /** The source user's own devices: only a destination. */
  self: new Ref('autogroup:self', 'autogroup:self'),
  /** The internet through exit nodes: only a destination. */
  internet: new Ref('autogroup:internet', 'autogroup:internet'),
  /** Any login except root: only an SSH login. */
  nonroot: new Ref('autogroup:nonroot', 'autogroup:nonroot'),
} as const;

/** Everything ("*"). */
export const anything = new Ref('wildcard', '*');

const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(\/(\d{1,2}))?$/;

/** An IP address or prefix as a target; malformed text throws at once. */
export function cidr(text: string): Ref<'prefix'> {
  const m = v4.exec(text);
  const ok4 = m !== null && m.slice(1, 5).every((o) => Number(o) <= 255) && (m[6] === undefined || Number(m[6]) <= 32);
  const ok6 = !m && text.includes(':') && /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(text);
  if (!ok4 && !ok6) throw new Error(`"${text}" is not an IP address or CIDR prefix`);
  return new Ref('prefix', text);
}

const nameRe = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Checks a group, tag or host name ("db", not "tag:db"). */
export function checkName(what: string, name: string): string {
  if (!nameRe.test(name)) throw new Error(`${what} name "${name}" must match ${nameRe} (without the "${what}:" prefix)`);
  return name;
}
