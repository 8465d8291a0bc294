/** Binding for data source `tailplane_nodes`: the registered nodes, optionally of one user. */
import type { IResolvable, TerraformMetaArguments } from 'cdktf';
import type { Construct } from 'constructs';
import { TailplaneDataSource, type AttrSpec } from './common.ts';

export interface DataTailplaneNodesConfig {
  /** Only nodes owned by this user (name). */
  readonly user?: string;
}

const spec: AttrSpec = { user: ['user', 'string'] };

export class DataTailplaneNodes extends TailplaneDataSource<DataTailplaneNodesConfig> {
  static readonly tfResourceType = 'tailplane_nodes';

  constructor(scope: Construct, id: string, config: DataTailplaneNodesConfig & TerraformMetaArguments = {}) {
    super(scope, id, DataTailplaneNodes.tfResourceType, spec, config);
  }

  /** The list of { id, hostname, given_name, user, tags, ip_addresses, approved_routes, available_routes, online }. */
  get nodes(): IResolvable {
    return this.interpolationForAttribute('nodes');
  }
  /** One field of the i-th node, e.g. `nodeAttribute(0, 'hostname')`. */
  nodeAttribute(index: number, field: string): string {
    return this.getStringAttribute(`nodes[${index}].${field}`);
  }
}
