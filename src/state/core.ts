/**
 * The tailnet in memory: indexed, immutable records loaded from the store, and the single write path —
 * commit to the store in one transaction, then swap in the new records, then publish the change.
 */
import type { ApiKey, DnsSettings, Node, OAuthClient, OAuthToken, PolicyRecord, PreAuthKey, SshCheck, User } from '../domain/types.ts';
import type { Hashed, Store, StoreTx } from '../store/store.ts';
import type { Change, ChangeListener, NodeField } from './changes.ts';
import { notesOf, type AuditNote } from '../audit/derive.ts';
import { currentActor } from '../audit/context.ts';

export interface Indexes {
  readonly users: Map<number, User>;
  readonly nodes: Map<number, Node>;
  readonly nodesByNodeKey: Map<string, Node>;
  readonly nodesByMachineKey: Map<string, Node>;
  readonly preAuthKeys: Map<number, Hashed<PreAuthKey>>;
  readonly apiKeys: Map<number, Hashed<ApiKey>>;
  readonly oauthClients: Map<number, Hashed<OAuthClient>>;
  readonly oauthTokens: Map<number, Hashed<OAuthToken>>;
  /** IPs in use, for allocation. */
  readonly ips: Set<string>;
  /** Given names in use, for uniqueness. */
  readonly names: Set<string>;
  settings: { policy: PolicyRecord | null; dns: DnsSettings };
  /** Connected node ids (not persisted: a restart starts with everyone offline). */
  readonly online: Set<number>;
  /** SSH checks by id still of use: pending, approvals that may admit sessions, and those decided lately. */
  readonly sshChecks: Map<string, SshCheck>;
}

export interface Core {
  readonly ix: Indexes;
  /**
   * Commits `fn`'s writes in one store transaction; if it throws, nothing is written and the indexes are
   * untouched. On success `apply` updates the indexes and the changes are published in order.
   * The same transaction appends one audit entry per change (or per `audit` note, which replaces what the
   * changes would say), with the actor the door set (src/audit/context.ts). Soft writes are what nodes report
   * about themselves and are not audited.
   */
  write<T>(fn: (tx: StoreTx) => WriteOutcome<T>, opts?: { soft?: boolean }): T;
  /**
   * A durable write that joins the store's group commit (Store.writeGrouped): the indexes move and the changes
   * go out at once, as for `write`, and `durable` settles when the group commits. Should that commit fail, the
   * write is undone in memory and its opposite published. Only node additions, updates and removals can be undone so.
   * Inside a batch it is an ordinary write of the batch.
   */
  writeGrouped<T>(fn: (tx: StoreTx) => WriteOutcome<T>): { result: T; durable: Promise<void> };
  /**
   * Runs several writes as one: they commit in one store transaction and their changes are published after it;
   * if `fn` throws, nothing is written, the indexes are as before and nothing is published. `fn` is synchronous,
   * so no other write can come between its writes.
   */
  batch<T>(fn: () => T): T;
  /** Publishes without a store write (online/offline, which lives only in memory). */
  publish(changes: Change[]): void;
  subscribe(listener: ChangeListener): () => void;
  /**
   * Takes in a record another replica committed (read back from the shared store): the indexes move and the
   * same changes a local write would publish go out, so this replica's streams get their deltas. Nothing is
   * written (the other replica did) and nothing is audited (it was, there). `record` null means deleted;
   * for `setting` the id is the setting's key and the record its value.
   */
  applyRemote(entity: RemoteEntity, id: string, record: unknown | null): void;
}

/** What a write's function returns: its result, how the indexes move, what to publish and audit. */
export interface WriteOutcome<T> {
  result: T;
  apply?: () => void;
  changes?: Change[];
  audit?: AuditNote[];
}

/** The stored entities a replica can learn of from another one (see src/replica/bus.ts). */
export type RemoteEntity = 'user' | 'node' | 'pre_auth_key' | 'api_key' | 'oauth_client' | 'oauth_token' | 'setting' | 'ssh_check';

export function indexNode(ix: Indexes, node: Node): void {
  ix.nodes.set(node.id, node);
  ix.nodesByNodeKey.set(node.nodeKey, node);
  ix.nodesByMachineKey.set(node.machineKey, node);
  ix.ips.add(node.ipv4);
  ix.ips.add(node.ipv6);
  ix.names.add(node.givenName);
}

export function unindexNode(ix: Indexes, node: Node): void {
  ix.nodes.delete(node.id);
  if (ix.nodesByNodeKey.get(node.nodeKey)?.id === node.id) ix.nodesByNodeKey.delete(node.nodeKey);
  if (ix.nodesByMachineKey.get(node.machineKey)?.id === node.id) ix.nodesByMachineKey.delete(node.machineKey);
  ix.ips.delete(node.ipv4);
  ix.ips.delete(node.ipv6);
  ix.names.delete(node.givenName);
}

export function createCore(store: Store, defaultDns: DnsSettings): Core {
  const loaded = store.load();
  const ix: Indexes = {
    users: new Map(loaded.users.map((u) => [u.id, Object.freeze(u)])),
    nodes: new Map(),
    nodesByNodeKey: new Map(),
    nodesByMachineKey: new Map(),
    preAuthKeys: new Map(loaded.preAuthKeys.map((k) => [k.record.id, k])),
    apiKeys: new Map(loaded.apiKeys.map((k) => [k.record.id, k])),
    oauthClients: new Map(loaded.oauthClients.map((c) => [c.record.id, c])),
    oauthTokens: new Map(loaded.oauthTokens.map((t) => [t.record.id, t])),
    ips: new Set(),
    names: new Set(),
    settings: {
      policy: (loaded.settings.policy as PolicyRecord | undefined) ?? null,
      // Settings stored before a field existed get its default (what clients were sent before).
      dns: { ...defaultDns, ...(loaded.settings.dns as Partial<DnsSettings> | undefined) },
    },
    online: new Set(),
    sshChecks: new Map(loaded.sshChecks.map((c) => [c.id, Object.freeze(c)])),
  };
  for (const n of loaded.nodes) indexNode(ix, Object.freeze(n));
  const listeners = new Set<ChangeListener>();
  const publish = (changes: Change[]) => {
    for (const c of changes) for (const l of listeners) l(c);
  };
  /** Changes held back while a batch runs; undefined outside a batch. */
  let held: Change[] | undefined;
  /** fn, then one audit entry per change (or per note) in the same transaction, with the door's actor. */
  const audited = <T>(fn: (tx: StoreTx) => WriteOutcome<T>) => (tx: StoreTx) => {
    const out = fn(tx);
    const who = currentActor();
    const time = new Date().toISOString();
    for (const note of out.audit ?? notesOf(out.changes ?? [])) tx.appendAudit({ actor: who.actor, door: who.door, source: who.source, ...note }, time);
    return out;
  };
  /** Moves the indexes and publishes (or holds, inside a batch) what a committed or grouped write changed. */
  const applied = <T>({ result, apply, changes }: WriteOutcome<T>): T => {
    // Inside a batch the indexes move at once, so the batch's next write (and its checks) sees this one.
    apply?.();
    if (changes) held ? held.push(...changes) : publish(changes);
    return result;
  };
  /** Takes back in memory what a grouped write did whose commit failed. */
  const undo = (changes: Change[]) => {
    for (const c of [...changes].reverse()) {
      if (c.kind === 'node-added') publish(applyNode(ix, c.node.id, null));
      else if (c.kind === 'node-updated') publish(applyNode(ix, c.node.id, c.before));
      else if (c.kind === 'node-removed') publish(applyNode(ix, c.node.id, c.node));
    }
  };
  const core: Core = {
    ix,
    write(fn, opts) {
      return applied(store.write(opts?.soft ? fn : audited(fn), opts));
    },
    writeGrouped(fn) {
      if (held) return { result: core.write(fn), durable: Promise.resolve() };
      const { result: out, durable } = store.writeGrouped(audited(fn));
      const result = applied(out);
      const settled = durable.catch((err) => {
        undo(out.changes ?? []);
        throw err;
      });
      settled.catch(() => {});
      return { result, durable: settled };
    },
    batch(fn) {
      if (held) return fn();
      const saved = snapshotIndexes(ix);
      held = [];
      try {
        const result = store.transaction(fn);
        const changes = held;
        held = undefined;
        publish(changes);
        return result;
      } catch (err) {
        held = undefined;
        restoreIndexes(ix, saved);
        throw err;
      }
    },
    publish,
    applyRemote(entity, id, record) {
      const changes = applyRecord(ix, defaultDns, entity, id, record).map((c) => ({ ...c, remote: true as const }));
      if (changes.length > 0) held ? held.push(...changes) : publish(changes);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return core;
}

/** Moves the indexes to a remote record and says what changed, as the local write would have. */
function applyRecord(ix: Indexes, defaultDns: DnsSettings, entity: RemoteEntity, id: string, record: unknown | null): Change[] {
  const num = Number(id);
  switch (entity) {
    case 'node':
      return applyNode(ix, num, record === null ? null : Object.freeze(record as Node));
    case 'user': {
      const before = ix.users.get(num);
      if (record === null) {
        if (!before) return [];
        ix.users.delete(num);
        return [{ kind: 'user-removed', user: before }];
      }
      const user = Object.freeze(record as User);
      if (before && same(before, user)) return [];
      ix.users.set(num, user);
      return [{ kind: before ? 'user-updated' : 'user-added', user }];
    }
    case 'pre_auth_key':
      return putOrDelete(ix.preAuthKeys, num, record as Hashed<PreAuthKey> | null);
    case 'api_key':
      return putOrDelete(ix.apiKeys, num, record as Hashed<ApiKey> | null);
    case 'oauth_client':
      return putOrDelete(ix.oauthClients, num, record as Hashed<OAuthClient> | null);
    case 'oauth_token':
      return putOrDelete(ix.oauthTokens, num, record as Hashed<OAuthToken> | null);
    case 'ssh_check':
      return putOrDelete(ix.sshChecks, id, record === null ? null : Object.freeze(record as SshCheck));
    case 'setting':
      if (id === 'policy') {
        const policy = (record as PolicyRecord | null) ?? null;
        if (same(ix.settings.policy, policy)) return [];
        ix.settings.policy = policy;
        return [{ kind: 'policy-changed' }];
      }
      if (id === 'dns') {
        const dns = Object.freeze({ ...defaultDns, ...(record as Partial<DnsSettings> | null) });
        if (same(ix.settings.dns, dns)) return [];
        ix.settings.dns = dns;
        return [{ kind: 'dns-changed' }];
      }
      return [];
  }
}

function applyNode(ix: Indexes, id: number, node: Node | null): Change[] {
  const before = ix.nodes.get(id);
  if (!node) {
    if (!before) return [];
    unindexNode(ix, before);
    ix.online.delete(id);
    return [{ kind: 'node-removed', node: before }];
  }
  if (!before) {
    indexNode(ix, node);
    return [{ kind: 'node-added', node }];
  }
  if (same(before, node)) return [];
  unindexNode(ix, before);
  indexNode(ix, node);
  return [{ kind: 'node-updated', before, node, fields: nodeFields(before, node) }];
}

/** The fields a local write would have named for this difference (a last-seen-only change names none). */
export function nodeFields(a: Node, b: Node): NodeField[] {
  const fields: NodeField[] = [];
  const differ = (...keys: (keyof Node)[]) => keys.some((k) => !same(a[k], b[k]));
  if (differ('nodeKey', 'discoKey', 'machineKey')) fields.push('keys');
  if (differ('endpoints')) fields.push('endpoints');
  if (differ('hostinfo')) fields.push('hostinfo');
  if (differ('givenName')) fields.push('name');
  if (differ('tags')) fields.push('tags');
  if (differ('availableRoutes', 'approvedRoutes')) fields.push('routes');
  if (differ('expiry')) fields.push('expiry');
  if (differ('userId')) fields.push('owner');
  return fields;
}

function putOrDelete<K, V>(map: Map<K, V>, key: K, value: V | null): Change[] {
  if (value === null) map.delete(key);
  else map.set(key, value);
  return [];
}

/** Equal values; records compare field by field, since a row read back may list its fields in another order. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!isRecord(a) || !isRecord(b)) return JSON.stringify(a) === JSON.stringify(b);
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => same(a[k], b[k]));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type Saved = { maps: [Map<unknown, unknown>, Map<unknown, unknown>][]; sets: [Set<string>, Set<string>][]; settings: Indexes['settings'] };

/** Shallow copies of the indexes: records are frozen, so copying the maps is enough to undo a batch. */
function snapshotIndexes(ix: Indexes): Saved {
  const maps = [ix.users, ix.nodes, ix.nodesByNodeKey, ix.nodesByMachineKey, ix.preAuthKeys, ix.apiKeys] as Map<unknown, unknown>[];
  return {
    maps: maps.map((m) => [m, new Map(m)]),
    sets: [ix.ips, ix.names].map((s) => [s, new Set(s)]),
    settings: { ...ix.settings },
  };
}

/** Puts the saved contents back into the same objects (other modules hold references to them). */
function restoreIndexes(ix: Indexes, saved: Saved): void {
  for (const [live, copy] of saved.maps) {
    live.clear();
    for (const [k, v] of copy) live.set(k, v);
  }
  for (const [live, copy] of saved.sets) {
    live.clear();
    for (const v of copy) live.add(v);
  }
  ix.settings = saved.settings;
}
