/** Binding for resource `tailplane_policy`: the tailnet's one HuJSON policy document. */
import type { TerraformMetaArguments } from 'cdktf';
import type { Construct } from 'constructs';
import { TailplaneResource, type AttrSpec } from './common.ts';

export interface PolicyConfig {
  /** The policy text (HuJSON). */
  readonly policy: string;
}

const spec: AttrSpec = { policy: ['policy', 'string'] };

export class Policy extends TailplaneResource<PolicyConfig> {
  static readonly tfResourceType = 'tailplane_policy';

  constructor(scope: Construct, id: string, config: PolicyConfig & TerraformMetaArguments) {
    super(scope, id, Policy.tfResourceType, spec, config);
  }

  get id(): string {
    return this.getStringAttribute('id');
  }
  get policy(): string {
    return this.getStringAttribute('policy');
  }
}
