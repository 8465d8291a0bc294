/** Users, groups and tags: the identities a policy names, with the fluent API for rules about them. */
import { dependable } from 'cdktf';
import { Construct } from 'constructs';
import * as tf from '../bindings/index.ts';
import type { PolicyDoc } from './render.ts';
import { checkName, portsOf, Ref, type AclTarget, type Port, type Ports, type SshLogin, type SshTarget, type TagOwner, type UserRef } from './refs.ts';
import { AclRule, SshRule, type Protocol } from './rules.ts';
import { nextId, tailnetOf, validateRefs, type PolicyPart, type TailnetScope } from './scope.ts';

export interface SshOptions {
  /** Logins allowed on the targets, e.g. ['root', Autogroup.nonroot]. */
  readonly as: SshLogin[];
  /** Require a fresh login check: true or a period ("12h", "always"). */
  readonly check?: boolean | string;
  readonly description?: string;
}

export interface ReachOptions {
  readonly proto?: Protocol;
  readonly description?: string;
}

/** What users, groups and tags share: a policy alias, port helpers, and rules with themselves as source. */
abstract class Principal<K extends 'user' | 'group' | 'tag'> extends Construct {
  abstract readonly refKind: K;
  abstract readonly alias: string;
  protected readonly tailnet: TailnetScope;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.tailnet = tailnetOf(this);
  }

  port(n: number): Port<this> {
    return portsOf.one(this, n);
  }
  ports(...ns: number[]): Ports<this> {
    return portsOf.many(this, ns);
  }
  portRange(first: number, last: number): Ports<this> {
    return portsOf.range(this, first, last);
  }

  /** Lets this identity reach the destinations (an ACL rule declared under this construct). */
  canReach(...dst: (AclTarget | Ports)[]): AclRule {
    return new AclRule(this, nextId(this, 'reach'), { src: [this], dst });
  }

  /** The same, with a protocol or a description. */
  canReachWith(options: ReachOptions, ...dst: (AclTarget | Ports)[]): AclRule {
    return new AclRule(this, nextId(this, 'reach'), { src: [this], dst, ...options });
  }

  /** Lets this identity open Tailscale SSH sessions on the targets. */
  canSsh(dst: SshTarget | SshTarget[], options: SshOptions): SshRule {
    return new SshRule(this, nextId(this, 'ssh'), { src: [this], dst: Array.isArray(dst) ? dst : [dst], ...options });
  }
}

export interface UserProps {
  /** Login name; default the construct id. */
  readonly name?: string;
  readonly displayName?: string;
  readonly email?: string;
}

/** A tailnet user (tailplane_user); the policy writes it "name@" (or its e-mail-style name as is). */
export class User extends Principal<'user'> {
  /** A user not managed here (e.g. one that signs in through OIDC), named in rules and groups. */
  static fromName(name: string): Ref<'user'> {
    return new Ref('user', userAlias(name));
  }

  readonly refKind = 'user' as const;
  readonly alias: string;
  readonly userName: string;
  readonly resource: tf.User;

  constructor(scope: Construct, id: string, props: UserProps = {}) {
    super(scope, id);
    this.userName = props.name ?? id;
    this.alias = userAlias(this.userName);
    this.resource = new tf.User(this, 'resource', { name: this.userName, displayName: props.displayName, email: props.email, provider: this.tailnet.provider });
    // The policy's tests name users, so the server should know them first (and forget them last).
    this.tailnet.policyResource.dependsOn = [...(this.tailnet.policyResource.dependsOn ?? []), dependable(this.resource)];
  }
}

const userAlias = (name: string) => (name.includes('@') ? name : `${name}@`);

export interface GroupProps {
  /** Name without "group:"; default the construct id. */
  readonly name?: string;
  readonly members?: UserRef[];
}

/** A policy group of users ("group:name"); only users may be members. */
export class Group extends Principal<'group'> implements PolicyPart {
  /** A group declared by other code in the same Tailnet (still checked at synth). */
  static fromName(name: string): Ref<'group'> {
    return new Ref('group', `group:${checkName('group', name)}`);
  }

  readonly refKind = 'group' as const;
  readonly alias: string;
  private readonly members: UserRef[];

  constructor(scope: Construct, id: string, props: GroupProps = {}) {
    super(scope, id);
    this.alias = `group:${checkName('group', props.name ?? id)}`;
    this.members = [...(props.members ?? [])];
    this.tailnet.register(this);
    validateRefs(this, this.tailnet, () => this.members);
  }

  addMember(...users: UserRef[]): this {
    this.members.push(...users);
    return this;
  }

  contribute(doc: PolicyDoc): void {
    doc.groups.set(this.alias, this.members.map((m) => m.alias));
  }
}

export interface TagProps {
  /** Name without "tag:"; default the construct id. */
  readonly name?: string;
  /** Who may apply the tag (tagOwners); empty means only admins via the API. */
  readonly owners?: TagOwner[];
}

/** An ACL tag ("tag:name") and its owners; tagged nodes are owned by their tags, not a user. */
export class Tag extends Principal<'tag'> implements PolicyPart {
  /** A tag declared by other code in the same Tailnet (still checked at synth). */
  static fromName(name: string): Ref<'tag'> {
    return new Ref('tag', `tag:${checkName('tag', name)}`);
  }

  readonly refKind = 'tag' as const;
  readonly alias: string;
  private readonly owners: TagOwner[];

  constructor(scope: Construct, id: string, props: TagProps = {}) {
    super(scope, id);
    this.alias = `tag:${checkName('tag', props.name ?? id)}`;
    this.owners = [...(props.owners ?? [])];
    this.tailnet.register(this);
    validateRefs(this, this.tailnet, () => this.owners);
  }

  contribute(doc: PolicyDoc): void {
    doc.tagOwners.set(this.alias, this.owners.map((o) => o.alias));
  }
}
