/** Binding for resource `tailplane_user`. */
import type { TerraformMetaArguments } from 'cdktf';
import type { Construct } from 'constructs';
import { TailplaneResource, type AttrSpec } from './common.ts';

export interface UserConfig {
  /** Unique login name, e.g. "alice"; renaming is done in place. */
  readonly name: string;
  readonly displayName?: string;
  readonly email?: string;
}

const spec: AttrSpec = { name: ['name', 'string'], displayName: ['display_name', 'string'], email: ['email', 'string'] };

export class User extends TailplaneResource<UserConfig> {
  static readonly tfResourceType = 'tailplane_user';

  constructor(scope: Construct, id: string, config: UserConfig & TerraformMetaArguments) {
    super(scope, id, User.tfResourceType, spec, config);
  }

  get id(): string {
    return this.getStringAttribute('id');
  }
  get name(): string {
    return this.getStringAttribute('name');
  }
  get displayName(): string {
    return this.getStringAttribute('display_name');
  }
  get email(): string {
    return this.getStringAttribute('email');
  }
  get createdAt(): string {
    return this.getStringAttribute('created_at');
  }
}
