/** Binding for resource `tailplane_preauth_key`; every argument forces a new key. */
import type { TerraformMetaArguments } from 'cdktf';
import type { Construct } from 'constructs';
import { TailplaneResource, type AttrSpec } from './common.ts';

export interface PreauthKeyConfig {
  /** Owner (user id or name); omit for a tags-only key. */
  readonly user?: string;
  readonly reusable?: boolean;
  readonly ephemeral?: boolean;
  /** Expiry time (RFC 3339); omitted means never. */
  readonly expiration?: string;
  /** ACL tags ("tag:x") given to nodes registered with the key. */
  readonly tags?: string[];
}

const spec: AttrSpec = {
  user: ['user', 'string'],
  reusable: ['reusable', 'bool'],
  ephemeral: ['ephemeral', 'bool'],
  expiration: ['expiration', 'string'],
  tags: ['tags', 'stringSet'],
};

export class PreauthKey extends TailplaneResource<PreauthKeyConfig> {
  static readonly tfResourceType = 'tailplane_preauth_key';

  constructor(scope: Construct, id: string, config: PreauthKeyConfig & TerraformMetaArguments = {}) {
    super(scope, id, PreauthKey.tfResourceType, spec, config);
  }

  get id(): string {
    return this.getStringAttribute('id');
  }
  /** The secret key (sensitive; known only to the run that creates it). */
  get key(): string {
    return this.getStringAttribute('key');
  }
  get tags(): string[] {
    return this.getListAttribute('tags');
  }
}
