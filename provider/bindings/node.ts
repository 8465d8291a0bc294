/** Binding for resource `tailplane_node`: adopts a node that registered itself and manages some of its settings. */
import type { TerraformMetaArguments } from 'cdktf';
import type { Construct } from 'constructs';
import { TailplaneResource, type AttrSpec } from './common.ts';

export interface NodeConfig {
  /** Adopt the node whose client hostname is this (set this or `name`). */
  readonly hostname?: string;
  /** Adopt the node whose MagicDNS name is this. */
  readonly name?: string;
  /** How long create waits for the node to register, e.g. "5m". */
  readonly waitFor?: string;
  readonly tags?: string[];
  readonly approvedRoutes?: string[];
  readonly givenName?: string;
  readonly keyExpiryDisabled?: boolean;
  /** Delete the node on destroy (for machines the configuration enrolled itself). */
  readonly removeOnDestroy?: boolean;
}

const spec: AttrSpec = {
  hostname: ['hostname', 'string'],
  name: ['name', 'string'],
  waitFor: ['wait_for', 'string'],
  tags: ['tags', 'stringSet'],
  approvedRoutes: ['approved_routes', 'stringSet'],
  givenName: ['given_name', 'string'],
  keyExpiryDisabled: ['key_expiry_disabled', 'bool'],
  removeOnDestroy: ['remove_on_destroy', 'bool'],
};

export class Node extends TailplaneResource<NodeConfig> {
  static readonly tfResourceType = 'tailplane_node';

  constructor(scope: Construct, id: string, config: NodeConfig & TerraformMetaArguments) {
    super(scope, id, Node.tfResourceType, spec, config);
  }

  /** The node id (the resource's `id`). */
  get nodeId(): string {
    return this.getStringAttribute('id');
  }
  get givenName(): string {
    return this.getStringAttribute('given_name');
  }
  /** The owning user's name ("" for a tagged node). */
  get user(): string {
    return this.getStringAttribute('user');
  }
  /** IPv4 first, then IPv6. */
  get ipAddresses(): string[] {
    return this.getListAttribute('ip_addresses');
  }
}
