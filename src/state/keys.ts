/**
 * Pre-auth keys and admin API keys: created with a secret shown once, checked by hash, expired or deleted.
 * Consuming a single-use pre-auth key is a conditional update in the store, so exactly one registration wins,
 * also across replicas sharing one database.
 */
import { parseTimeOrDuration, timeHint } from '../domain/time.ts';
import type { ApiKey, PreAuthKey } from '../domain/types.ts';
import type { Hashed } from '../store/store.ts';
import { isRole, roles } from '../domain/roles.ts';
import type { AuditNote } from '../audit/derive.ts';
import type { Core } from './core.ts';
import { invalid, notFound, StateError, unlessStoreAway } from './errors.ts';
import { StoreConflictError } from '../store/errors.ts';
import { newSecret, secretMatches, splitSecret } from './secrets.ts';
import type { TagOwners } from './tag-owners.ts';
import type { Users } from './users.ts';

const tagPattern = /^tag:[a-z0-9][a-z0-9-]*$/i;

export function checkTags(tags: readonly string[]): void {
  for (const t of tags) if (!tagPattern.test(t)) throw invalid(`invalid tag "${t}": tags look like "tag:name"`);
}

/** null or absent: never expires; an empty string is a mistake, not "never". */
function checkExpiration(expiration: string | null | undefined, now: Date): string | null {
  if (expiration === null || expiration === undefined) return null;
  const at = parseTimeOrDuration(expiration, now);
  if (!at) throw invalid(`invalid expiration ${JSON.stringify(expiration.slice(0, 80))}: expected ${timeHint}, or null for never`);
  if (at.getTime() <= now.getTime()) throw invalid(`expiration ${expiration} is in the past`);
  return at.toISOString();
}

const isExpired = (expiration: string | null, now: Date) =>
  expiration !== null && Date.parse(expiration) <= now.getTime();

export interface PreAuthKeyInput {
  userId?: number | null;
  reusable?: boolean;
  ephemeral?: boolean;
  expiration?: string | null;
  tags?: string[];
  description?: string;
}

export function createPreAuthKeys(core: Core, users: Users, tagOwners: TagOwners, now: () => Date) {
  const { ix } = core;
  const get = (id: number): Hashed<PreAuthKey> => {
    const k = ix.preAuthKeys.get(id);
    if (!k) throw notFound(`pre-auth key ${id} not found`);
    return k;
  };
  const save = (record: PreAuthKey, audit?: AuditNote[]) =>
    core.write((tx) => {
      tx.updatePreAuthKey(record);
      const hashed = { record, hash: get(record.id).hash };
      return { result: record, apply: () => ix.preAuthKeys.set(record.id, hashed), audit };
    });
  /** The key with this prefix: a loop, not a copy of every key per registration. */
  const byPrefix = (prefix: string) => {
    for (const k of ix.preAuthKeys.values()) if (k.record.prefix === prefix) return k;
    return undefined;
  };
  const authKeyNote = (action: string, k: PreAuthKey, summary: string): AuditNote[] => [{ action: `authkey.${action}`, object: `authkey:${k.id}`, summary: `${k.prefix} ${summary}` }];
  return {
    list: (): PreAuthKey[] => [...ix.preAuthKeys.values()].map((k) => k.record),
    get: (id: number) => get(id).record,
    create(input: PreAuthKeyInput): { key: string; record: PreAuthKey } {
      const tags = input.tags ?? [];
      checkTags(tags);
      const user = input.userId != null ? users.get(input.userId) : undefined;
      if (user === undefined && tags.length === 0) throw invalid('a pre-auth key needs a user or at least one tag');
      // A user's key may carry only tags that user owns; a tags-only key is the admin's, any defined tag.
      tagOwners.check(tags, user?.name);
      const secret = newSecret('tpkey-auth');
      const fields = {
        prefix: secret.prefix,
        userId: input.userId ?? null,
        reusable: input.reusable ?? false,
        ephemeral: input.ephemeral ?? false,
        used: false,
        tags,
        expiration: checkExpiration(input.expiration, now()),
        createdAt: now().toISOString(),
        description: input.description ?? '',
      };
      return core.write((tx) => {
        const record = { id: tx.insertPreAuthKey(fields, secret.hash), ...fields };
        const owner = record.userId !== null ? `user:${record.userId}` : `tags ${tags.join(',')}`;
        return {
          result: { key: secret.key, record },
          apply: () => ix.preAuthKeys.set(record.id, { record, hash: secret.hash }),
          audit: authKeyNote('create', record, `→ ${owner}${record.reusable ? ' reusable' : ''}${record.ephemeral ? ' ephemeral' : ''}`),
        };
      });
    },
    expire(id: number): PreAuthKey {
      const { record } = get(id);
      if (isExpired(record.expiration, now())) return record;
      return save({ ...record, expiration: now().toISOString() }, authKeyNote('expire', record, `expiry ${record.expiration ?? 'never'} → now`));
    },
    remove(id: number): void {
      const { record } = get(id);
      core.write((tx) => {
        tx.deletePreAuthKey(id);
        return { result: undefined, apply: () => ix.preAuthKeys.delete(id), audit: authKeyNote('delete', record, '→') };
      });
    },
    /**
     * Validates a presented key and, for a single-use key, marks it used in the same synchronous step.
     * Throws an 'unauthorized' StateError with a message meant for the person running `tailscale up`.
     * `check` may refuse the registration (by throwing) before a single-use key is spent.
     */
    consume(key: string, check?: (record: PreAuthKey) => void): PreAuthKey {
      const parts = splitSecret('tpkey-auth', key);
      const found = parts ? byPrefix(parts.prefix) : undefined;
      if (!parts || !found || !secretMatches(parts.secret, found.hash)) {
        throw new StateError('unauthorized', 'invalid auth key');
      }
      const { record } = found;
      if (isExpired(record.expiration, now())) throw new StateError('unauthorized', 'auth key expired');
      if (record.used && !record.reusable) throw new StateError('unauthorized', 'auth key already used');
      check?.(record);
      if (record.used) return record;
      // A reusable key is only marked as having been used: any number of registrations may race for it.
      if (record.reusable) return save({ ...record, used: true });
      // Decided by the database, not this copy: another replica may have spent the key a moment ago.
      const spent = { ...record, used: true };
      try {
        return core.write((tx) => {
          tx.usePreAuthKey(record.id);
          return { result: spent, apply: () => ix.preAuthKeys.set(record.id, { record: spent, hash: found.hash }) };
        });
      } catch (err) {
        if (!(err instanceof StoreConflictError)) throw err;
        ix.preAuthKeys.set(record.id, { record: spent, hash: found.hash });
        throw new StateError('unauthorized', 'auth key already used');
      }
    },
  };
}

export function createApiKeys(core: Core, now: () => Date) {
  const { ix } = core;
  const find = (ref: { id?: number; prefix?: string }): Hashed<ApiKey> => {
    const k = [...ix.apiKeys.values()].find((x) =>
      ref.id !== undefined ? x.record.id === ref.id : x.record.prefix === ref.prefix,
    );
    if (!k) throw notFound(`API key ${ref.id ?? ref.prefix} not found`);
    return k;
  };
  const save = (record: ApiKey, audit?: AuditNote[]) =>
    core.write((tx) => {
      tx.updateApiKey(record);
      const hashed = { record, hash: find({ id: record.id }).hash };
      return { result: record, apply: () => ix.apiKeys.set(record.id, hashed), audit };
    });
  const apiKeyNote = (action: string, k: ApiKey, summary: string): AuditNote[] => [{ action: `apikey.${action}`, object: `apikey:${k.id}`, summary: `${k.prefix} ${summary}` }];
  return {
    list: (): ApiKey[] => [...ix.apiKeys.values()].map((k) => k.record),
    create(input: { expiration?: string | null; role?: string }): { key: string; record: ApiKey } {
      const role = input.role ?? 'admin';
      if (!isRole(role)) throw invalid(`invalid role "${role}": use one of ${roles.join(', ')}`);
      const secret = newSecret('tpkey-api');
      const fields = {
        prefix: secret.prefix,
        role,
        expiration: checkExpiration(input.expiration, now()),
        lastSeen: null,
        createdAt: now().toISOString(),
      };
      return core.write((tx) => {
        const record = { id: tx.insertApiKey(fields, secret.hash), ...fields };
        return {
          result: { key: secret.key, record },
          apply: () => ix.apiKeys.set(record.id, { record, hash: secret.hash }),
          audit: apiKeyNote('create', record, `→ role ${role}`),
        };
      });
    },
    expire(ref: { id?: number; prefix?: string }): ApiKey {
      const { record } = find(ref);
      if (isExpired(record.expiration, now())) return record;
      return save({ ...record, expiration: now().toISOString() }, apiKeyNote('expire', record, `expiry ${record.expiration ?? 'never'} → now`));
    },
    remove(ref: { id?: number; prefix?: string }): void {
      const { record } = find(ref);
      core.write((tx) => {
        tx.deleteApiKey(record.id);
        return { result: undefined, apply: () => ix.apiKeys.delete(record.id), audit: apiKeyNote('delete', record, '→') };
      });
    },
    /** The key's record if it is valid and unexpired, else null. Records last use at most once a minute. */
    authenticate(key: string): ApiKey | null {
      const parts = splitSecret('tpkey-api', key);
      const found = parts && [...ix.apiKeys.values()].find((k) => k.record.prefix === parts.prefix);
      if (!parts || !found || !secretMatches(parts.secret, found.hash)) return null;
      if (isExpired(found.record.expiration, now())) return null;
      const last = found.record.lastSeen ? Date.parse(found.record.lastSeen) : 0;
      if (now().getTime() - last <= 60_000) return found.record;
      // With the database away, reads (and the detailed health) still answer: last use is noted next time.
      return unlessStoreAway(() => save({ ...found.record, lastSeen: now().toISOString() })) ?? found.record;
    },
  };
}
