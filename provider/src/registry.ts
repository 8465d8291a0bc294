/** The provider's resource types and data sources, as one list each. */
import type { DataSource, ManagedResource } from './resource.ts';
import { dnsResource } from './resources/dns.ts';
import { nodeResource } from './resources/node.ts';
import { nodesDataSource } from './resources/nodes-data.ts';
import { policyResource } from './resources/policy.ts';
import { preAuthKeyResource } from './resources/preauth-key.ts';
import { userResource } from './resources/user.ts';
import { usersDataSource } from './resources/users-data.ts';

export const providerVersion = '0.1.0';
/** The source address users write in required_providers (and the filesystem mirror's directory). */
export const providerSource = 'terraform.local/tailplane/tailplane';

export function allResources(): ManagedResource[] {
  return [userResource(), preAuthKeyResource(), nodeResource(), policyResource(), dnsResource()];
}

export function allDataSources(): DataSource[] {
  return [usersDataSource(), nodesDataSource()];
}
