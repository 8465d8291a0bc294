/** Binding for resource `tailplane_dns`: the tailnet's DNS settings; arguments left out keep their live value. */
import type { IResolvable, TerraformMetaArguments } from 'cdktf';
import type { Construct } from 'constructs';
import { TailplaneResource, type AttrSpec } from './common.ts';

export interface DnsRecord {
  readonly name: string;
  readonly type: 'A' | 'AAAA';
  readonly value: string;
}

export interface DnsConfig {
  readonly magicDns?: boolean;
  readonly baseDomain?: string;
  readonly nameservers?: string[];
  readonly overrideLocalDns?: boolean;
  readonly searchDomains?: string[];
  /** Resolvers per domain. */
  readonly splitDns?: Record<string, string[]>;
  readonly extraRecords?: DnsRecord[] | IResolvable;
}

const spec: AttrSpec = {
  magicDns: ['magic_dns', 'bool'],
  baseDomain: ['base_domain', 'string'],
  nameservers: ['nameservers', 'stringList'],
  overrideLocalDns: ['override_local_dns', 'bool'],
  searchDomains: ['search_domains', 'stringList'],
  splitDns: ['split_dns', 'stringListMap'],
  extraRecords: ['extra_records', 'objectList'],
};

export class Dns extends TailplaneResource<DnsConfig> {
  static readonly tfResourceType = 'tailplane_dns';

  constructor(scope: Construct, id: string, config: DnsConfig & TerraformMetaArguments = {}) {
    super(scope, id, Dns.tfResourceType, spec, config);
  }

  get id(): string {
    return this.getStringAttribute('id');
  }
  get baseDomain(): string {
    return this.getStringAttribute('base_domain');
  }
  get nameservers(): string[] {
    return this.getListAttribute('nameservers');
  }
}
