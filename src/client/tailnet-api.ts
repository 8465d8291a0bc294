/**
 * The admin API as typed operations, one function each: the single place that knows its paths and JSON
 * shapes for the engine and the Terraform provider.
 */
import { ApiError, type AdminClient } from './admin-client.ts';
import type { ApiNode, ApiPreAuthKey, ApiUser } from '../domain/api.ts';
import { defaultKeyLifetimeMs, type DnsSettings } from '../domain/types.ts';
import type { BatchRequest, BatchResult, Lease } from '../domain/batch.ts';

export type { ApiNode, ApiPreAuthKey, ApiUser, DnsSettings };
export { ApiError };

export interface NewPreAuthKey {
  user: string | null;
  reusable: boolean;
  ephemeral: boolean;
  expiration: string | null;
  tags: string[];
}

export { defaultKeyLifetimeMs };

export function tailnetApi(c: AdminClient) {
  const seg = encodeURIComponent;
  /** Disables key expiry, or sets the key to expire at the given time. */
  const setNodeExpiry = async (id: string, expiry: { disable: true } | { at: string }) =>
    (await c.post<{ node: ApiNode }>(`/api/v1/node/${seg(id)}/expire`, 'disable' in expiry ? { disableExpiry: true } : { expiry: expiry.at })).node;
  return {
    listUsers: async () => (await c.get<{ users: ApiUser[] }>('/api/v1/user')).users,
    findUser: async (name: string) => (await c.get<{ users: ApiUser[] }>(`/api/v1/user?name=${seg(name)}`)).users[0],
    createUser: async (u: { name: string; displayName?: string; email?: string }) =>
      (await c.post<{ user: ApiUser }>('/api/v1/user', u)).user,
    renameUser: async (id: string, newName: string) =>
      (await c.post<{ user: ApiUser }>(`/api/v1/user/${seg(id)}/rename/${seg(newName)}`)).user,
    updateUser: async (id: string, u: { displayName?: string; email?: string }) =>
      (await c.put<{ user: ApiUser }>(`/api/v1/user/${seg(id)}`, u)).user,
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
    deleteNode: async (id: string) => void (await c.delete(`/api/v1/node/${seg(id)}`)),
    setNodeTags: async (id: string, tags: string[]) => (await c.post<{ node: ApiNode }>(`/api/v1/node/${seg(id)}/tags`, { tags })).node,
    approveNodeRoutes: async (id: string, routes: string[]) =>
      (await c.post<{ node: ApiNode }>(`/api/v1/node/${seg(id)}/approve_routes`, { routes })).node,
    renameNode: async (id: string, name: string) => (await c.post<{ node: ApiNode }>(`/api/v1/node/${seg(id)}/rename/${seg(name)}`)).node,
    setNodeExpiry,
    /** Turns key expiry off, or back on with the default lifetime from `now`. */
    setNodeKeyExpiryDisabled: (id: string, disabled: boolean, now = new Date()) =>
      setNodeExpiry(id, disabled ? { disable: true } : { at: new Date(now.getTime() + defaultKeyLifetimeMs).toISOString() }),

    /** The live policy text ('' when none was ever set). */
    getPolicy: async () => (await c.get<{ policy: string }>('/api/v1/policy')).policy,
    /** The live policy text with its ETag, to write back with `setPolicy(text, etag)`. */
    getPolicyVersion: async () => {
      const { policy, etag } = await c.get<{ policy: string; etag: string }>('/api/v1/policy');
      return { policy, etag };
    },
    /** Replaces the policy; with `ifMatch`, only if the live policy still has that ETag (else ApiError 412). */
    setPolicy: async (text: string, ifMatch?: string) =>
      (await c.put<{ policy: string }>('/api/v1/policy', { policy: text }, ifMatch !== undefined ? { 'if-match': ifMatch } : undefined)).policy,
    /** Throws an ApiError with the server's message (syntax with line:column, failing tests) when invalid. */
    checkPolicy: async (text: string) => void (await c.post('/api/v1/policy/check', { policy: text })),

    /** Applies every operation or none (see POST /api/v1/batch). */
    batch: (req: BatchRequest) => c.post<BatchResult>('/api/v1/batch', req),
    /** Takes or renews a lease; an ApiError 409 names the current holder. */
    acquireLease: async (name: string, holder: string, ttlSeconds: number) =>
      (await c.post<{ lease: Lease }>(`/api/v1/lease/${seg(name)}`, { holder, ttlSeconds })).lease,
    /** Reports the continuous-sync status (only the holder of the `sync` lease may). */
    reportSync: async (holder: string, status: Record<string, unknown>) => void (await c.put('/api/v1/sync', { holder, status })),
    getSync: async () => c.get<{ status: Record<string, unknown> | null; leader: Lease | null }>('/api/v1/sync'),
    releaseLease: async (name: string, holder: string) => void (await c.delete(`/api/v1/lease/${seg(name)}?holder=${seg(holder)}`)),

    getDns: async () => (await c.get<{ dns: DnsSettings }>('/api/v1/dns')).dns,
    setDns: async (dns: DnsSettings) => (await c.put<{ dns: DnsSettings }>('/api/v1/dns', dns)).dns,
  };
}

export type TailnetApi = ReturnType<typeof tailnetApi>;

/** True for the API's "no such object" answer, which a read turns into "gone". */
export const isNotFound = (err: unknown) => err instanceof ApiError && err.status === 404;

/** True for the API's "the policy changed since you read it" answer (a stale If-Match). */
export const isStalePolicy = (err: unknown) => err instanceof ApiError && err.status === 412;
