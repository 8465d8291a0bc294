/** Reads the live state of a tailnet (users, nodes, pre-auth keys, policy, DNS) through the admin API. */
import type { AdminClient } from '../client/admin-client.ts';
import { tailnetApi } from '../client/tailnet-api.ts';
import type { ApiNode, ApiPreAuthKey, ApiUser } from '../domain/api.ts';
import type { DnsSettings } from '../domain/types.ts';

export interface LiveState {
  readonly users: readonly ApiUser[];
  readonly nodes: readonly ApiNode[];
  readonly preAuthKeys: readonly ApiPreAuthKey[];
  /** The policy's HuJSON text; "" when none was ever set. */
  readonly policy: string;
  /** The live policy's ETag: a policy write planned from this state only lands while it is still live. */
  readonly policyEtag?: string;
  readonly dns: DnsSettings;
}

export async function readLive(client: AdminClient): Promise<LiveState> {
  const api = tailnetApi(client);
  const [users, nodes, preAuthKeys, policy, dns] = await Promise.all([
    api.listUsers(),
    api.listNodes(),
    api.listPreAuthKeys(),
    api.getPolicyVersion(),
    api.getDns(),
  ]);
  return { users, nodes, preAuthKeys, policy: policy.policy, policyEtag: policy.etag, dns };
}
