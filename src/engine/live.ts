/** Reads the live state of a tailnet (users, nodes, pre-auth keys, policy, DNS) through the admin API. */
import type { AdminClient } from '../client/admin-client.ts';
import type { ApiNode, ApiPreAuthKey, ApiUser } from '../domain/api.ts';
import type { DnsSettings } from '../domain/types.ts';

export interface LiveState {
  readonly users: readonly ApiUser[];
  readonly nodes: readonly ApiNode[];
  readonly preAuthKeys: readonly ApiPreAuthKey[];
  /** The policy's HuJSON text; "" when none was ever set. */
  readonly policy: string;
  readonly dns: DnsSettings;
}

export async function readLive(client: AdminClient): Promise<LiveState> {
  const [users, nodes, keys, policy, dns] = await Promise.all([
    client.get<{ users: ApiUser[] }>('/api/v1/user'),
    client.get<{ nodes: ApiNode[] }>('/api/v1/node'),
    client.get<{ preAuthKeys: ApiPreAuthKey[] }>('/api/v1/preauthkey'),
    client.get<{ policy: string }>('/api/v1/policy'),
    client.get<{ dns: DnsSettings }>('/api/v1/dns'),
  ]);
  return { users: users.users, nodes: nodes.nodes, preAuthKeys: keys.preAuthKeys, policy: policy.policy, dns: dns.dns };
}
