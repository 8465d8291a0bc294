/** Nodes taken under management (tailplane_node) and the subnet routes and exit routes approved for them. */
import { Fn, Lazy, Token } from 'cdktf';
import { Construct } from 'constructs';
import * as tf from '../bindings/index.ts';
import type { PolicyDoc } from './render.ts';
import { checkName, cidr, portsOf, type Port, type Ports, type TagOwner, type TagRef } from './refs.ts';
import { joinPolicy, tailnetOf, validateRefs, type PolicyPart } from './scope.ts';

export interface NodeProps {
  /** The client hostname the machine registered with (it registers itself; this adopts it). */
  readonly hostname: string;
  readonly tags?: TagRef[];
  /** MagicDNS name to give it. */
  readonly givenName?: string;
  readonly keyExpiryDisabled?: boolean;
  /** How long apply waits for the machine to register, e.g. "5m". */
  readonly waitFor?: string;
  /** Remove the node from the tailnet on destroy: set it when the stack enrolls the machine itself. */
  readonly removeOnDestroy?: boolean;
}

/**
 * A registered machine under management. As a policy target it is a `hosts` entry holding its first address, which is
 * a Terraform reference: known after apply, so prefer tags in rules the server must check before the node exists.
 */
export class Node extends Construct {
  readonly refKind = 'node' as const;
  readonly alias: string;
  readonly resource: tf.Node;
  private readonly routes: string[] = [];

  constructor(scope: Construct, id: string, readonly props: NodeProps) {
    super(scope, id);
    const tailnet = tailnetOf(this);
    this.alias = `node-${checkName('host', props.hostname)}`;
    this.resource = new tf.Node(this, 'resource', {
      hostname: props.hostname,
      tags: props.tags?.map((t) => t.alias),
      givenName: props.givenName,
      keyExpiryDisabled: props.keyExpiryDisabled,
      waitFor: props.waitFor,
      removeOnDestroy: props.removeOnDestroy,
      // Unmanaged unless a SubnetRoute or ExitNode is declared on this node.
      approvedRoutes: Lazy.listValue({ produce: () => (this.routes.length ? [...this.routes] : undefined) }),
      provider: tailnet.provider,
      // Tags must be in tagOwners before the server lets a node carry them.
      dependsOn: [tailnet.policyResource],
    });
    validateRefs(this, tailnet, () => props.tags ?? []);
  }

  /** The node's first (IPv4) address, a Terraform reference. */
  get hostValue(): string {
    return Token.asString(Fn.element(this.resource.ipAddresses, 0));
  }
  get nodeId(): string {
    return this.resource.nodeId;
  }

  port(n: number): Port<this> {
    return portsOf.one(this, n);
  }
  ports(...ns: number[]): Ports<this> {
    return portsOf.many(this, ns);
  }

  /** @internal Called by SubnetRoute and ExitNode. */
  approve(...prefixes: string[]): void {
    this.routes.push(...prefixes);
  }
}

export interface SubnetRouteProps {
  /** The advertised prefix to approve, e.g. "10.20.0.0/16". */
  readonly prefix: string;
  /** A hosts name for the prefix, so rules read `clinicLan.port(443)` → "clinic-lan:443". */
  readonly name?: string;
  /** Who may have this route approved automatically (autoApprovers.routes). */
  readonly autoApprovers?: TagOwner[];
}

/** A subnet route of a Node: approved on the node, and a policy target (the prefix, or a named host). */
export class SubnetRoute extends Construct implements PolicyPart {
  readonly refKind: 'host' | 'prefix';
  readonly alias: string;

  constructor(node: Node, id: string, readonly props: SubnetRouteProps) {
    super(node, id);
    cidr(props.prefix);
    this.refKind = props.name ? 'host' : 'prefix';
    this.alias = props.name ? checkName('host', props.name) : props.prefix;
    node.approve(props.prefix);
    joinPolicy(this, () => props.autoApprovers ?? []);
  }

  get hostValue(): string | undefined {
    return this.props.name ? this.props.prefix : undefined;
  }

  port(n: number): Port<this> {
    return portsOf.one(this, n);
  }
  ports(...ns: number[]): Ports<this> {
    return portsOf.many(this, ns);
  }

  contribute(doc: PolicyDoc): void {
    if (this.props.name) doc.hosts.set(this.alias, this.props.prefix);
    if (this.props.autoApprovers?.length) doc.routeApprovers.set(this.props.prefix, this.props.autoApprovers.map((a) => a.alias));
  }
}

export interface ExitNodeProps {
  /** Who may be approved as an exit node automatically (autoApprovers.exitNode). */
  readonly autoApprovers?: TagOwner[];
}

/** Makes a Node an approved exit node (0.0.0.0/0 and ::/0); reach it in rules through `Autogroup.internet`. */
export class ExitNode extends Construct implements PolicyPart {
  constructor(node: Node, id: string, readonly props: ExitNodeProps = {}) {
    super(node, id);
    node.approve('0.0.0.0/0', '::/0');
    joinPolicy(this, () => props.autoApprovers ?? []);
  }

  contribute(doc: PolicyDoc): void {
    for (const a of this.props.autoApprovers ?? []) if (!doc.exitNodeApprovers.includes(a.alias)) doc.exitNodeApprovers.push(a.alias);
  }
}
