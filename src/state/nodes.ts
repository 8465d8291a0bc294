/**
 * Nodes of the tailnet: registration (new machine, or re-registration with a rotated node key), admin edits
 * (rename, tags, routes, expiry, delete), and what clients report in map requests (disco key, endpoints,
 * hostinfo, online).
 */
import { parseTimeOrDuration, timeHint } from '../domain/time.ts';
import type { Endpoint, Node, RegisterMethod } from '../domain/types.ts';
import { normalizeRoutes } from '../domain/routes.ts';
import type { NodeField } from './changes.ts';
import { indexNode, unindexNode, type Core, type WriteOutcome } from './core.ts';
import type { StoreTx } from '../store/store.ts';
import { conflict, invalid, notFound, unlessStoreAway } from './errors.ts';
import { StoreConflictError } from '../store/errors.ts';
import type { IpAllocator } from './ipam.ts';
import { checkTags } from './keys.ts';
import { isValidGivenName, sanitizeHostname, uniqueName } from './names.ts';
import type { TagOwners } from './tag-owners.ts';
import type { Users } from './users.ts';

export interface RegisterInput {
  machineKey: string;
  nodeKey: string;
  hostname: string;
  hostinfo: Record<string, unknown>;
  userId: number | null;
  tags: string[];
  ephemeral: boolean;
  method: RegisterMethod;
}

/** Canonical route list; an invalid prefix is the caller's error. */
function checkedRoutes(routes: readonly string[]): string[] {
  try {
    return normalizeRoutes(routes);
  } catch (err) {
    throw invalid((err as Error).message);
  }
}

export interface NodeOptions {
  /** Default key expiry for user-owned nodes in seconds (0 = never). */
  expirySeconds: number;
}

/** A registered node, and when its record is durable (at once, unless its write joined a group commit). */
export interface Registered {
  readonly node: Node;
  /** Settles when the node is stored: with the node as stored (after a clash with another replica, not `node`). */
  readonly durable: Promise<Node>;
}

/** How often a registration retries after another replica took its address or name first. */
const maxAllocationAttempts = 20;

export function createNodes(core: Core, users: Users, ipam: IpAllocator, tagOwners: TagOwners, opts: NodeOptions, now: () => Date) {
  const { ix } = core;
  const get = (id: number): Node => {
    const n = ix.nodes.get(id);
    if (!n) throw notFound(`node ${id} not found`);
    return n;
  };
  /** Commits a new version of a node and publishes which fields changed. */
  /** Writes a node's new record; `soft` for what the client reports anyway on its next connection. */
  const update = (before: Node, patch: Partial<Node>, fields: NodeField[], soft = false): Node => {
    const node = Object.freeze({ ...before, ...patch, id: before.id });
    return core.write((tx) => {
      tx.updateNode(node);
      return {
        result: node,
        apply: () => {
          unindexNode(ix, before);
          indexNode(ix, node);
        },
        changes: [{ kind: 'node-updated', before, node, fields }],
      };
    }, { soft });
  };
  /**
   * Connections to this server, to other replicas (their presence), and those this server had when it last
   * stopped and that have not come back yet (control/resume.ts); online is any of them.
   */
  const local = new Set<number>();
  const remote = new Set<number>();
  const resuming = new Set<number>();
  const presenceListeners = new Set<(id: number, online: boolean) => void>();
  /** Publishes a change of the node's overall online state; the replica that saw the node leave records last seen. */
  const showOnline = (node: Node, recordLastSeen: boolean, seenAt = now()) => {
    const online = local.has(node.id) || remote.has(node.id) || resuming.has(node.id);
    if (ix.online.has(node.id) === online) return;
    if (online) ix.online.add(node.id);
    else ix.online.delete(node.id);
    if (online || !recordLastSeen) return core.publish([{ kind: 'node-updated', before: node, node, fields: ['online'] }]);
    // PostgreSQL is restarting: peers still learn the node left; its last seen is lost.
    if (unlessStoreAway(() => update(node, { lastSeen: seenAt.toISOString() }, ['online'], true)) === undefined) {
      core.publish([{ kind: 'node-updated', before: node, node, fields: ['online'] }]);
    }
  };
  const removal =
    (node: Node) =>
    (tx: StoreTx): WriteOutcome<undefined> => {
      tx.deleteNode(node.id);
      const apply = () => {
        unindexNode(ix, node);
        ix.online.delete(node.id);
        local.delete(node.id);
        remote.delete(node.id);
        resuming.delete(node.id);
      };
      return { result: undefined, apply, changes: [{ kind: 'node-removed', node }] };
    };
  const defaultExpiry = (tagged: boolean): string | null =>
    tagged || opts.expirySeconds === 0 ? null : new Date(now().getTime() + opts.expirySeconds * 1000).toISOString();

  /**
   * Allocates from the in-memory sets; another replica may have taken the same address or name a moment ago,
   * which the database's unique constraints catch: that value is then skipped and the allocation retried.
   * A grouped write learns of the clash when its group commits (PostgreSQL): it retries then, and `durable`
   * resolves to the node as it was finally stored.
   */
  const create = (input: RegisterInput, grouped: boolean, takenElsewhere = new Set<string>(), attempt = 1): Registered => {
    // A replica whose view lags another's would walk into its addresses one by one: after two clashes, pick at random.
    const fields = newNode(input, takenElsewhere, attempt > 2);
    const insert = (tx: StoreTx): WriteOutcome<Node> => {
      const node = Object.freeze({ id: tx.insertNode(fields), ...fields });
      return { result: node, apply: () => indexNode(ix, node), changes: [{ kind: 'node-added', node }] };
    };
    /** After a clash on an address or name: another try without it; anything else is thrown. */
    const again = (err: unknown): Registered => {
      if (!(err instanceof StoreConflictError)) throw err;
      if (err.constraint === 'nodes.machine_key' || err.constraint === 'nodes.node_key') {
        throw conflict('this machine is being registered through another server right now: retry');
      }
      const taken = { 'nodes.ipv4': fields.ipv4, 'nodes.ipv6': fields.ipv6, 'nodes.given_name': fields.givenName }[err.constraint];
      if (taken === undefined || attempt >= maxAllocationAttempts) throw err;
      takenElsewhere.add(taken);
      return create(input, grouped, takenElsewhere, attempt + 1);
    };
    try {
      if (!grouped) {
        const node = core.write(insert);
        return { node, durable: Promise.resolve(node) };
      }
      const { result, durable } = core.writeGrouped(insert);
      return { node: result, durable: durable.then(() => result, (err) => again(err).durable) };
    } catch (err) {
      return again(err);
    }
  };

  const newNode = (input: RegisterInput, takenElsewhere: Set<string>, random: boolean): Omit<Node, 'id'> => {
    const { ipv4, ipv6 } = ipam.next((ip) => ix.ips.has(ip) || takenElsewhere.has(ip), random);
    return {
      machineKey: input.machineKey,
      nodeKey: input.nodeKey,
      discoKey: '',
      ipv4,
      ipv6,
      hostname: input.hostname,
      givenName: uniqueName(sanitizeHostname(input.hostname), (n) => ix.names.has(n) || takenElsewhere.has(n)),
      userId: input.tags.length > 0 ? null : input.userId,
      tags: input.tags,
      hostinfo: input.hostinfo,
      endpoints: [],
      expiry: defaultExpiry(input.tags.length > 0),
      lastSeen: null,
      createdAt: now().toISOString(),
      registerMethod: input.method,
      ephemeral: input.ephemeral,
      availableRoutes: routesOf(input.hostinfo),
      approvedRoutes: [],
    };
  };

  const registerNode = (input: RegisterInput, grouped: boolean): Registered => {
    if (input.userId === null && input.tags.length === 0) throw invalid('a node needs a user or tags');
    if (input.userId !== null) users.get(input.userId);
    checkTags(input.tags);
    const clash = ix.nodesByNodeKey.get(input.nodeKey);
    if (clash && clash.machineKey !== input.machineKey) throw conflict('node key already belongs to another machine');
    const existing = ix.nodesByMachineKey.get(input.machineKey);
    if (!existing) return create(input, grouped);
    const tagged = input.tags.length > 0;
    const node = update(
      existing,
      {
        nodeKey: input.nodeKey,
        userId: tagged ? null : input.userId,
        tags: input.tags,
        hostinfo: { ...existing.hostinfo, ...input.hostinfo },
        expiry: defaultExpiry(tagged),
        ephemeral: input.ephemeral,
        registerMethod: input.method,
        availableRoutes: routesOf(input.hostinfo),
      },
      ['keys', 'owner', 'tags', 'expiry', 'hostinfo', 'routes'],
    );
    return { node, durable: Promise.resolve(node) };
  };

  return {
    list: (): Node[] => [...ix.nodes.values()],
    get,
    find: (id: number): Node | undefined => ix.nodes.get(id),
    byNodeKey: (key: string) => ix.nodesByNodeKey.get(key),
    byMachineKey: (key: string) => ix.nodesByMachineKey.get(key),
    isOnline: (id: number) => ix.online.has(id),
    /** Connected to control now (to this server or a replica); unlike isOnline, not a node resumed after a restart. */
    isConnected: (id: number) => local.has(id) || remote.has(id),

    /**
     * Registers a machine. A machine key seen before keeps its node (id, IPs, name); its node key, owner
     * and expiry are refreshed — this covers re-authentication and node-key rotation.
     */
    register: (input: RegisterInput): Node => registerNode(input, false).node,
    /**
     * The same for a client's own registration: a new node's write joins the store's group commit (a burst of
     * joins shares one flush), so the client is answered once `durable` has settled.
     */
    registerGrouped: (input: RegisterInput): Registered => registerNode(input, true),

    rename(id: number, newName: string): Node {
      const node = get(id);
      if (!isValidGivenName(newName)) {
        throw invalid(`invalid node name "${newName}": use a DNS label (a-z, 0-9, '-', at most 63 characters)`);
      }
      if (node.givenName === newName) return node;
      if (ix.names.has(newName)) throw conflict(`node name "${newName}" is already taken`);
      return update(node, { givenName: newName }, ['name']);
    },

    /** Sets a node's tags (an admin's edit: any tag the policy defines); tagging a user's node transfers ownership to the tags. */
    setTags(id: number, tags: string[]): Node {
      const node = get(id);
      checkTags(tags);
      const unique = [...new Set(tags)].sort();
      // Tags the node already has stay valid even if the policy dropped them since; only new ones are checked.
      tagOwners.check(unique.filter((t) => !node.tags.includes(t)));
      if (unique.length === 0 && node.userId === null) {
        throw invalid('a tagged node cannot drop all its tags; re-register it with a user key instead');
      }
      const patch: Partial<Node> = unique.length > 0 ? { tags: unique, userId: null, expiry: null } : { tags: [] };
      return update(node, patch, ['tags', 'owner', 'expiry']);
    },

    approveRoutes(id: number, routes: string[]): Node {
      return update(get(id), { approvedRoutes: checkedRoutes(routes) }, ['routes']);
    },

    /** Expires the node's key now or at `at`; `null` disables expiry. */
    setExpiry(id: number, at: string | null): Node {
      const node = get(id);
      let expiry: string | null = null;
      if (at !== null) {
        const t = parseTimeOrDuration(at, new Date());
        if (!t) throw invalid(`invalid expiry ${JSON.stringify(at.slice(0, 80))}: expected ${timeHint}`);
        expiry = t.toISOString();
      }
      return update(node, { expiry }, ['expiry']);
    },

    remove(id: number): Node {
      const node = get(id);
      core.write(removal(node));
      return node;
    },
    /**
     * The same for a client's own logout (an ephemeral node leaving): the delete joins the store's group commit, as a
     * registration does, so a wave of them shares the flushes; the client is answered once `durable` has settled.
     */
    removeGrouped(id: number): { node: Node; durable: Promise<void> } {
      const node = get(id);
      return { node, durable: core.writeGrouped(removal(node)).durable };
    },

    /** Applies what a client reports in a map request; publishes only when something changed. */
    report(id: number, r: { discoKey?: string; endpoints?: Endpoint[]; hostinfo?: Record<string, unknown> }): Node {
      const node = get(id);
      const patch: { -readonly [K in keyof Node]?: Node[K] } = {};
      const fields: NodeField[] = [];
      if (r.discoKey && r.discoKey !== node.discoKey) {
        patch.discoKey = r.discoKey;
        fields.push('keys');
      }
      if (r.endpoints && JSON.stringify(r.endpoints) !== JSON.stringify(node.endpoints)) {
        patch.endpoints = r.endpoints;
        fields.push('endpoints');
      }
      if (r.hostinfo) {
        // A Hostinfo without NetInfo keeps the previous NetInfo (the client sends it separately).
        const hostinfo = { ...r.hostinfo, NetInfo: r.hostinfo.NetInfo ?? node.hostinfo.NetInfo };
        if (JSON.stringify(hostinfo) !== JSON.stringify(node.hostinfo)) {
          patch.hostinfo = hostinfo;
          fields.push('hostinfo');
          const routes = routesOf(hostinfo);
          if (JSON.stringify(routes) !== JSON.stringify(node.availableRoutes)) {
            patch.availableRoutes = routes;
            fields.push('routes');
          }
        }
      }
      return fields.length === 0 ? node : update(node, patch, fields, true);
    },

    /**
     * Marks a node connected to this server or not; going offline records last seen. With replicas, a node
     * connected to another one (setRemoteOnline) stays online here until it has left both.
     */
    setOnline(id: number, online: boolean): void {
      const node = ix.nodes.get(id);
      if (!node || local.has(id) === online) return;
      if (online) local.add(id);
      else local.delete(id);
      resuming.delete(id);
      for (const l of presenceListeners) l(id, online);
      showOnline(node, true);
    },

    /** Shows nodes online that were connected when this server last stopped, until each connects again or endResume. */
    resume(ids: readonly number[]): void {
      for (const id of ids) {
        const node = ix.nodes.get(id);
        if (!node || local.has(id)) continue;
        resuming.add(id);
        showOnline(node, false);
      }
    },

    /** The resumed nodes that have not connected again go offline, last seen when the server stopped. */
    endResume(stoppedAt: Date): void {
      const ids = [...resuming];
      resuming.clear();
      for (const id of ids) {
        const node = ix.nodes.get(id);
        if (node) showOnline(node, true, stoppedAt);
      }
    },

    /** What a stop now leaves to resume: nodes connected to this server, and those resumed and not back yet. */
    toResume: (): number[] => [...local, ...resuming].filter((id) => ix.nodes.has(id)),

    /** What another replica says about its own connection to a node; in memory only (that replica records last seen). */
    setRemoteOnline(id: number, online: boolean): void {
      const node = ix.nodes.get(id);
      if (!node || remote.has(id) === online) return;
      if (online) remote.add(id);
      else remote.delete(id);
      showOnline(node, false);
    },

    /** Nodes connected to this server itself (not through another replica). */
    localOnline: (): number[] => [...local].filter((id) => ix.nodes.has(id)),

    /** Calls `fn` whenever a node connects to or leaves this server itself; returns the unsubscribe. */
    watchPresence(fn: (id: number, online: boolean) => void): () => void {
      presenceListeners.add(fn);
      return () => presenceListeners.delete(fn);
    },
  };
}

function routesOf(hostinfo: Record<string, unknown>): string[] {
  const r = hostinfo.RoutableIPs;
  if (!Array.isArray(r)) return [];
  try {
    return normalizeRoutes(r.filter((x): x is string => typeof x === 'string'));
  } catch {
    return [];
  }
}

export type Nodes = ReturnType<typeof createNodes>;
