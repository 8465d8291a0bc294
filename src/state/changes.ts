/**
 * Change events the state layer publishes after each committed write; the mapper turns them into deltas
 * for the affected clients only.
 */
import type { Node, User } from '../domain/types.ts';

/** Node fields whose change matters to peers or to the node itself. */
export type NodeField =
  | 'keys' // node key rotated or disco key changed
  | 'endpoints'
  | 'hostinfo'
  | 'name'
  | 'tags'
  | 'routes'
  | 'expiry'
  | 'online'
  | 'owner';

/**
 * `remote`: published for a record another replica committed (Core.applyRemote). Follow-up writes a change
 * causes (route auto-approval) are made by the replica where it happened, once.
 */
export type Change = { readonly remote?: true } & (
  | { readonly kind: 'node-added'; readonly node: Node }
  | { readonly kind: 'node-updated'; readonly before: Node; readonly node: Node; readonly fields: readonly NodeField[] }
  | { readonly kind: 'node-removed'; readonly node: Node }
  | { readonly kind: 'user-added' | 'user-updated' | 'user-removed'; readonly user: User }
  | { readonly kind: 'policy-changed' }
  | { readonly kind: 'dns-changed' }
);

export type ChangeListener = (change: Change) => void;
