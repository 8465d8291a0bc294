/** The provider's connection to a server: the shared typed admin API over its own client, closed at shutdown. */
import { createAdminClient } from '../../src/client/admin-client.ts';
import { tailnetApi } from '../../src/client/tailnet-api.ts';

export { ApiError, isNotFound, isStalePolicy, type ApiNode, type ApiPreAuthKey, type ApiUser, type DnsSettings, type NewPreAuthKey } from '../../src/client/tailnet-api.ts';

export function createTailnetApi(opts: { url: string; apiKey: string }) {
  const client = createAdminClient({ url: opts.url, apiKey: opts.apiKey, door: 'terraform' });
  return { ...tailnetApi(client), close: () => client.close() };
}

export type TailnetApi = ReturnType<typeof createTailnetApi>;
