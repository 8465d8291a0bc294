/**
 * Every tailnet operation the provider performs, one function each: the single seam between the resources and
 * the server, so moving from the admin client to the engine's functions later changes only this file.
 */
import { ApiError, createAdminClient } from '../../src/client/admin-client.ts';
import type { ApiNode, ApiPreAuthKey, ApiUser } from '../../src/domain/api.ts';
import type { DnsSettings } from '../../src/domain/types.ts';

export type { ApiNode, ApiPreAuthKey, ApiUser, DnsSettings };
export { ApiError };

export interface NewPreAuthKey {
  user: string | null;
  reusable: boolean;
  ephemeral: boolean;
  expiration: string | null;
  tags: string[];
}

export function createTailnetApi(opts: { url: string; apiKey: string }) {
  const c = createAdminClient({ url: opts.url, apiKey: opts.apiKey });
  const seg = encodeURIComponent;
  return {
    listUsers: async () => (await c.get<{ users: ApiUser[] }>('/api/v1/user')).users,
    createUser: async (u: { name: string; displayName?: string; email?: string }) =>
      (await c.post<{ user: ApiUser }>('/api/v1/user', u)).user,
    renameUser: async (id: string, newName: string) =>
      (await c.post<{ user: ApiUser }>(`/api/v1/user/${seg(id)}/rename/${seg(newName)}`)).user,
    deleteUser: async (id: string) => void (await c.delete(`/api/v1/user/${seg(id)}`)),

    listPreAuthKeys: async () => (await c.get<{ preAuthKeys: ApiPreAuthKey[] }>('/api/v1/preauthkey')).preAuthKeys,
    createPreAuthKey: async (k: NewPreAuthKey) =>
      (
        await c.post<{ preAuthKey: ApiPreAuthKey }>('/api/v1/preauthkey', {
          ...(k.user !== null ? { user: k.user } : {}),
          reusable: k.reusable,
          ephemeral: k.ephemeral,
          expiration: k.expiration,
          aclTags: k.tags,
        })
      ).preAuthKey,
    deletePreAuthKey: async (id: string) => void (await c.delete(`/api/v1/preauthkey?id=${seg(id)}`)),

    listNodes: async () => (await c.get<{ nodes: ApiNode[] }>('/api/v1/node')).nodes,
    getNode: async (id: string) => (await c.get<{ node: ApiNode }>(`/api/v1/node/${seg(id)}`)).node,
    setNodeTags: async (id: string, tags: string[]) => (await c.post<{ node: ApiNode }>(`/api/v1/node/${seg(id)}/tags`, { tags })).node,
    approveNodeRoutes: async (id: string, routes: string[]) =>
      (await c.post<{ node: ApiNode }>(`/api/v1/node/${seg(id)}/approve_routes`, { routes })).node,
    renameNode: async (id: string, name: string) => (await c.post<{ node: ApiNode }>(`/api/v1/node/${seg(id)}/rename/${seg(name)}`)).node,
    /** Disables key expiry, or sets the key to expire at the given time. */
    setNodeExpiry: async (id: string, expiry: { disable: true } | { at: string }) =>
      (await c.post<{ node: ApiNode }>(`/api/v1/node/${seg(id)}/expire`, 'disable' in expiry ? { disableExpiry: true } : { expiry: expiry.at })).node,

    /** The live policy text ('' when none was ever set). */
    getPolicy: async () => (await c.get<{ policy: string }>('/api/v1/policy')).policy,
    setPolicy: async (text: string) => (await c.put<{ policy: string }>('/api/v1/policy', { policy: text })).policy,
    /** Throws an ApiError with the server's message (syntax with line:column, failing tests) when invalid. */
    checkPolicy: async (text: string) => void (await c.post('/api/v1/policy/check', { policy: text })),

    getDns: async () => (await c.get<{ dns: DnsSettings }>('/api/v1/dns')).dns,
    setDns: async (dns: DnsSettings) => (await c.put<{ dns: DnsSettings }>('/api/v1/dns', dns)).dns,

    close: () => c.close(),
  };
}

export type TailnetApi = ReturnType<typeof createTailnetApi>;

/** True for the API's "no such object" answer, which a read turns into "gone". */
export const isNotFound = (err: unknown) => err instanceof ApiError && err.status === 404;
