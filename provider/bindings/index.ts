/** Prebuilt cdktf bindings for the tailplane Terraform provider, so users never run `cdktf get`. */
export { providerSource, providerVersion } from './common.ts';
export { TailplaneProvider, type TailplaneProviderConfig } from './provider.ts';
export { User, type UserConfig } from './user.ts';
export { PreauthKey, type PreauthKeyConfig } from './preauth-key.ts';
export { Node, type NodeConfig } from './node.ts';
export { Policy, type PolicyConfig } from './policy.ts';
export { Dns, type DnsConfig, type DnsRecord } from './dns.ts';
export { DataTailplaneNodes, type DataTailplaneNodesConfig } from './data-nodes.ts';
export { DataTailplaneUsers, type DataTailplaneUsersConfig } from './data-users.ts';
