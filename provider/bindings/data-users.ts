/** Binding for data source `tailplane_users`: every user, optionally only the one with a given name. */
import type { IResolvable, TerraformMetaArguments } from 'cdktf';
import type { Construct } from 'constructs';
import { TailplaneDataSource, type AttrSpec } from './common.ts';

export interface DataTailplaneUsersConfig {
  /** Only the user with this name. */
  readonly name?: string;
}

const spec: AttrSpec = { name: ['name', 'string'] };

export class DataTailplaneUsers extends TailplaneDataSource<DataTailplaneUsersConfig> {
  static readonly tfResourceType = 'tailplane_users';

  constructor(scope: Construct, id: string, config: DataTailplaneUsersConfig & TerraformMetaArguments = {}) {
    super(scope, id, DataTailplaneUsers.tfResourceType, spec, config);
  }

  /** The list of { id, name, display_name, email }. */
  get users(): IResolvable {
    return this.interpolationForAttribute('users');
  }
  /** One field of the i-th user, e.g. `userAttribute(0, 'id')`. */
  userAttribute(index: number, field: string): string {
    return this.getStringAttribute(`users[${index}].${field}`);
  }
}
