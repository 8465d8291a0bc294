/** Diffs a desired state against the live one into an ordered plan of create/update/delete changes with attribute diffs. */
import type { AccessChange } from '../policy/index.ts';
import type { DnsSettings } from '../domain/types.ts';
import { diffValues, type AttrDiff } from './attr-diff.ts';
import type { DesiredNode, DesiredPreAuthKey, DesiredState, DesiredUser } from './desired.ts';
import type { LiveState } from './live.ts';
import { normalizeRoutes } from '../domain/routes.ts';
import { matchNodes, matchPreAuthKeys } from './match.ts';
import { managesPolicy, parsePolicyText, policyDocument, renderPolicy } from './policy-doc.ts';
import { desiredSource } from './load.ts';
import { projectedTopology, reviewPolicy } from './review.ts';
import { policyLocator } from './source-map.ts';

export type { AttrDiff } from './attr-diff.ts';

interface ChangeBase {
  /** Stable name of the object, e.g. `user.alice`, `node.router`, `policy`, `dns`, `preauthkey.ci`. */
  readonly address: string;
  readonly action: 'create' | 'update' | 'delete';
  readonly diffs: readonly AttrDiff[];
}

export type Change =
  | (ChangeBase & { readonly kind: 'user'; readonly name: string; readonly id?: string; readonly user?: DesiredUser })
  | (ChangeBase & {
      readonly kind: 'policy';
      /** The HuJSON text to write. */
      readonly text: string;
      /** ETag of the live policy this change was planned against; apply refuses to write over any other. */
      readonly etag?: string;
      readonly problems: readonly string[];
      readonly accessDiff?: readonly AccessChange[];
    })
  | (ChangeBase & { readonly kind: 'dns'; readonly settings: DnsSettings })
  | (ChangeBase & { readonly kind: 'node'; readonly name: string; readonly id: string })
  | (ChangeBase & { readonly kind: 'preauthkey'; readonly name: string; readonly key: DesiredPreAuthKey });

export interface Plan {
  /** In the order apply runs them: users, policy, DNS, nodes, pre-auth keys, user deletions. */
  readonly changes: readonly Change[];
  /** Live objects the desired state does not declare (and will not delete). */
  readonly unmanaged: { readonly users: readonly string[]; readonly nodes: readonly string[]; readonly preAuthKeys: readonly string[] };
  /** Declared nodes that have not registered yet (nodes register themselves; the engine never creates them). */
  readonly waiting: readonly string[];
  readonly warnings: readonly string[];
}

/** The node attributes the engine manages, in the order apply sets them (tags before routes: tagging may change who approves). */
const nodeAttributes = ['tags', 'approvedRoutes', 'givenName', 'keyExpiryDisabled'] as const;

/** A pure function of its inputs, so the CLI, drift and the Terraform provider share it. */
export function planChanges(desired: DesiredState, live: LiveState, now = new Date()): Plan {
  const warnings: string[] = [];
  const nodes = matchNodes(desired.nodes ?? [], live.nodes);
  warnings.push(...nodes.warnings);
  const keys = matchPreAuthKeys(desired.preAuthKeys ?? [], live.preAuthKeys, now);
  const declaredUsers = new Set((desired.users ?? []).map((u) => u.name));
  const extraUsers = live.users.filter((u) => !declaredUsers.has(u.name));

  const changes: Change[] = [...userChanges(desired, live)];
  const policy = policyChange(desired, live, projectedTopology(live, desired, nodes.pairs));
  if (policy) changes.push(policy);
  const dns = dnsChange(desired, live);
  if (dns) changes.push(dns);
  for (const { desired: d, live: n } of nodes.pairs) {
    const diffs = nodeAttributes.flatMap((a) => (d[a] === undefined ? [] : diffValues(liveNodeAttr(n, a), desiredNodeAttr(d, a), a)));
    if (diffs.length > 0) changes.push({ kind: 'node', action: 'update', address: `node.${d.name}`, name: d.name, id: n.id, diffs });
    if (d.tags?.length === 0 && n.tags.length > 0) warnings.push(`node.${d.name}: the server refuses to drop every tag of a tagged node`);
    if (d.keyExpiryDisabled === false && (d.tags ?? n.tags).length > 0) warnings.push(`node.${d.name}: tagged nodes never expire; keyExpiryDisabled: false cannot hold`);
  }
  const known = new Set([...live.users.map((u) => u.name), ...declaredUsers]);
  for (const k of keys.missing) {
    if (k.user !== undefined && !known.has(k.user)) warnings.push(`preauthkey.${k.name}: user "${k.user}" is neither live nor declared`);
    const attrs = { user: k.user, tags: k.tags, reusable: k.reusable ?? false, ephemeral: k.ephemeral ?? false, expiration: k.expiration };
    changes.push({ kind: 'preauthkey', action: 'create', address: `preauthkey.${k.name}`, name: k.name, key: k, diffs: diffValues({}, attrs) });
  }
  if (desired.prune) {
    for (const u of extraUsers) {
      const owned = live.nodes.filter((n) => n.user?.id === u.id).length;
      if (owned > 0) warnings.push(`user.${u.name}: owns ${owned} node(s); the server refuses to delete it until they are deleted or retagged`);
      changes.push({ kind: 'user', action: 'delete', address: `user.${u.name}`, name: u.name, id: u.id, diffs: diffValues(userAttrs(u), {}) });
    }
  }
  const claimed = new Set(nodes.pairs.map((p) => p.live.id));
  return {
    changes,
    unmanaged: {
      users: desired.prune ? [] : extraUsers.map((u) => u.name),
      nodes: live.nodes.filter((n) => !claimed.has(n.id)).map((n) => n.givenName),
      preAuthKeys: keys.unclaimed.map((k) => `${k.id} (${k.aclTags.length ? k.aclTags.join(',') : `user ${k.user?.name ?? '?'}`})`),
    },
    waiting: nodes.waiting.map((n) => n.name),
    warnings,
  };
}

const userAttrs = (u: { displayName?: string; email?: string }) => ({ displayName: u.displayName, email: u.email });

function userChanges(desired: DesiredState, live: LiveState): Change[] {
  return (desired.users ?? []).flatMap((u): Change[] => {
    const current = live.users.find((l) => l.name === u.name);
    const address = `user.${u.name}`;
    if (!current) return [{ kind: 'user', action: 'create', address, name: u.name, user: u, diffs: diffValues({}, userAttrs(u)) }];
    // Only declared attributes are managed.
    const wanted = Object.fromEntries(Object.entries(userAttrs(u)).filter(([, v]) => v !== undefined));
    const have = Object.fromEntries(Object.keys(wanted).map((k) => [k, current[k as 'email' | 'displayName']]));
    const diffs = diffValues(have, wanted);
    return diffs.length ? [{ kind: 'user', action: 'update', address, name: u.name, id: current.id, user: u, diffs }] : [];
  });
}

function policyChange(desired: DesiredState, live: LiveState, topology: Parameters<typeof reviewPolicy>[2]): Change | undefined {
  if (!managesPolicy(desired)) return undefined;
  const text = renderPolicy(desired)!;
  const after = policyDocument(desired);
  const before = parsePolicyText(live.policy);
  const diffs =
    before === undefined && live.policy.trim() !== ''
      ? [{ path: '(text)', before: live.policy, after: '(the rendered policy)' }]
      : diffValues(before ?? {}, after);
  if (diffs.length === 0) return undefined;
  const action = live.policy.trim() === '' ? 'create' : 'update';
  const review = reviewPolicy(live.policy, text, topology, policyLocator(text, desiredSource(desired)));
  return { kind: 'policy', action, address: 'policy', text, etag: live.policyEtag, diffs, ...review };
}

function dnsChange(desired: DesiredState, live: LiveState): Change | undefined {
  if (!desired.dns) return undefined;
  const declared = Object.fromEntries(Object.entries(desired.dns).filter(([, v]) => v !== undefined));
  const current = Object.fromEntries(Object.keys(declared).map((k) => [k, live.dns[k as keyof DnsSettings]]));
  const diffs = diffValues(current, declared);
  if (diffs.length === 0) return undefined;
  return { kind: 'dns', action: 'update', address: 'dns', diffs, settings: { ...live.dns, ...declared } as DnsSettings };
}

type NodeAttribute = (typeof nodeAttributes)[number];

function liveNodeAttr(n: LiveState['nodes'][number], a: NodeAttribute): unknown {
  if (a === 'keyExpiryDisabled') return n.expiry === null;
  if (a === 'tags') return [...n.tags].sort();
  return n[a];
}

function desiredNodeAttr(d: DesiredNode, a: NodeAttribute): unknown {
  if (a === 'tags') return [...new Set(d.tags)].sort();
  if (a === 'approvedRoutes') return normalizeRoutes(d.approvedRoutes!);
  return d[a];
}
