/** Access rules, grants, SSH rules and policy tests: each a construct, so errors name where it was declared. */
import { Construct } from 'constructs';
import type { PolicyDoc } from './render.ts';
import { destinationText, type AclSource, type AclTarget, type Port, type Ports, type SshLogin, type SshSource, type SshTarget, type TestSource, type TestTarget, type TagRef } from './refs.ts';
import { joinPolicy, type PolicyPart } from './scope.ts';

export type Protocol = 'tcp' | 'udp' | 'icmp' | 'sctp' | number;

interface Common {
  /** Written as a comment above the entry in the policy. */
  readonly description?: string;
}

export interface AclRuleProps extends Common {
  readonly src: AclSource[];
  /** Targets (all ports) or targets with ports, e.g. `db.port(5432)`. */
  readonly dst: (AclTarget | Ports)[];
  readonly proto?: Protocol;
}

const targetOf = (d: AclTarget | Ports): AclTarget => ('target' in d ? d.target : d);
const comment = (c: Construct, description?: string) => (description ? `${description} (${c.node.path})` : c.node.path);

/** An `acls` entry: `src` may reach `dst`. */
export class AclRule extends Construct implements PolicyPart {
  constructor(scope: Construct, id: string, readonly props: AclRuleProps) {
    super(scope, id);
    joinPolicy(this, () => [...props.src, ...props.dst.map(targetOf)]);
    if (props.src.length === 0 || props.dst.length === 0) throw new Error(`${this.node.path}: an ACL rule needs a source and a destination`);
  }

  contribute(doc: PolicyDoc): void {
    const src = this.props.src.map((s) => doc.use(s));
    const dst = this.props.dst.map((d) => (doc.use(targetOf(d)), destinationText(d)));
    doc.acls.push({ comment: comment(this, this.props.description), value: { action: 'accept', src, dst, proto: this.props.proto } });
  }
}

export interface GrantProps extends Common {
  readonly src: AclSource[];
  readonly dst: AclTarget[];
  /** Protocol/port selectors such as "tcp:443" or "*"; default "*". */
  readonly ip?: string[];
  /** Application capabilities, e.g. { 'example.com/cap/admin': [{}] }. */
  readonly app?: Record<string, unknown[]>;
  /** Route through these tagged routers or exit nodes. */
  readonly via?: TagRef[];
}

/** A `grants` entry: network access (and optionally app capabilities) from `src` to `dst`. */
export class Grant extends Construct implements PolicyPart {
  constructor(scope: Construct, id: string, readonly props: GrantProps) {
    super(scope, id);
    joinPolicy(this, () => [...props.src, ...props.dst, ...(props.via ?? [])]);
  }

  contribute(doc: PolicyDoc): void {
    const { src, dst, ip, app, via } = this.props;
    const value = {
      src: src.map((s) => doc.use(s)),
      dst: dst.map((d) => doc.use(d)),
      ip: ip ?? (app ? undefined : ['*']),
      app,
      via: via?.map((v) => v.alias),
    };
    doc.grants.push({ comment: comment(this, this.props.description), value });
  }
}

export interface SshRuleProps extends Common {
  readonly src: SshSource[];
  readonly dst: SshTarget[];
  /** Logins allowed on the target, e.g. ['root', Autogroup.nonroot]. */
  readonly as: SshLogin[];
  /** Require a fresh login check: true (default period) or a period such as "12h" or "always". */
  readonly check?: boolean | string;
  readonly acceptEnv?: string[];
}

/** An `ssh` entry: Tailscale SSH from `src` to `dst` as the given logins. */
export class SshRule extends Construct implements PolicyPart {
  constructor(scope: Construct, id: string, readonly props: SshRuleProps) {
    super(scope, id);
    joinPolicy(this, () => [...props.src, ...props.dst]);
    if (props.as.length === 0) throw new Error(`${this.node.path}: an SSH rule needs at least one login in \`as\``);
  }

  contribute(doc: PolicyDoc): void {
    const { src, dst, as, check, acceptEnv } = this.props;
    const value = {
      action: check ? 'check' : 'accept',
      src: src.map((s) => s.alias),
      dst: dst.map((d) => d.alias),
      users: as.map((u) => (typeof u === 'string' ? u : u.alias)),
      checkPeriod: typeof check === 'string' ? check : undefined,
      acceptEnv,
    };
    doc.ssh.push({ comment: comment(this, this.props.description), value });
  }
}

export interface AclTestProps extends Common {
  readonly src: TestSource;
  readonly accept?: Port<TestTarget>[];
  readonly deny?: Port<TestTarget>[];
  readonly proto?: Protocol;
}

/** A `tests` entry, checked by the server (and by checkPolicy offline) before the policy is accepted. */
export class AclTest extends Construct implements PolicyPart {
  private readonly accept: Port<TestTarget>[];
  private readonly deny: Port<TestTarget>[];

  constructor(scope: Construct, id: string, readonly props: AclTestProps) {
    super(scope, id);
    this.accept = [...(props.accept ?? [])];
    this.deny = [...(props.deny ?? [])];
    joinPolicy(this, () => [props.src, ...this.accept.map((d) => d.target), ...this.deny.map((d) => d.target)]);
  }

  /** Expects `src` to reach each destination (one port each). */
  accepts(...dst: Port<TestTarget>[]): this {
    this.accept.push(...dst);
    return this;
  }

  /** Expects `src` not to reach each destination. */
  denies(...dst: Port<TestTarget>[]): this {
    this.deny.push(...dst);
    return this;
  }

  contribute(doc: PolicyDoc): void {
    const text = (d: Port<TestTarget>) => (doc.use(d.target), destinationText(d));
    const value = {
      src: doc.use(this.props.src),
      proto: this.props.proto,
      accept: this.accept.length ? this.accept.map(text) : undefined,
      deny: this.deny.length ? this.deny.map(text) : undefined,
    };
    doc.tests.push({ comment: comment(this, this.props.description), value });
  }
}
