/**
 * What an audit entry says about a change: derived from the change list the state layer publishes (nodes, users,
 * routes), or given by the write itself where no change is published (keys, SSH checks) or where the change
 * alone says too little (the policy's access diff, the DNS fields that changed).
 */
import type { Change, NodeField } from '../state/changes.ts';
import type { Node } from '../domain/types.ts';

/** An entry's content without who made it. */
export interface AuditNote {
  readonly action: string;
  readonly object: string;
  readonly summary: string;
}

/** Fields a node reports about itself on every reconnect: state, not decisions, so not audited. */
const reported = new Set<NodeField>(['endpoints', 'hostinfo', 'online', 'keys']);

const owner = (n: Node) => (n.userId !== null ? `user:${n.userId}` : `tags ${n.tags.join(',')}`);

const fieldValue: Partial<Record<NodeField, (n: Node) => string>> = {
  name: (n) => n.givenName,
  tags: (n) => JSON.stringify(n.tags),
  routes: (n) => JSON.stringify(n.approvedRoutes),
  expiry: (n) => n.expiry ?? 'never',
  owner,
};

/** `field: before → after` for each top-level field that differs (settings objects such as DNS). */
export function fieldChanges(before: object, after: object): string {
  const b = before as Record<string, unknown>;
  const a = after as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
  const parts = keys.filter((k) => JSON.stringify(b[k]) !== JSON.stringify(a[k])).map((k) => `${k}: ${JSON.stringify(b[k])} → ${JSON.stringify(a[k])}`);
  return parts.length ? parts.join('; ') : 'no change';
}

/** `idp groups: +joined -left`, for the audit log. */
export function idpGroupChanges(was: readonly string[], is: readonly string[]): string {
  const joined = is.filter((g) => !was.includes(g)).map((g) => `+${g}`);
  const left = was.filter((g) => !is.includes(g)).map((g) => `-${g}`);
  return `idp groups: ${[...joined, ...left].join(' ')}`;
}

export function notesOf(changes: readonly Change[]): AuditNote[] {
  const notes: AuditNote[] = [];
  for (const c of changes) {
    switch (c.kind) {
      case 'node-added':
        notes.push({ action: 'node.create', object: `node:${c.node.id}`, summary: `→ ${c.node.givenName} ${c.node.ipv4} owner ${owner(c.node)}` });
        break;
      case 'node-removed':
        notes.push({ action: 'node.delete', object: `node:${c.node.id}`, summary: `${c.node.givenName} ${c.node.ipv4} →` });
        break;
      case 'node-updated': {
        const fields = c.fields.filter((f) => !reported.has(f));
        if (fields.length === 0) break;
        const parts = fields.map((f) => `${f}: ${fieldValue[f]?.(c.before) ?? '?'} → ${fieldValue[f]?.(c.node) ?? '?'}`);
        notes.push({ action: 'node.update', object: `node:${c.node.id}`, summary: parts.join('; ') });
        break;
      }
      case 'user-added':
      case 'user-updated':
      case 'user-removed': {
        const verb = c.kind.slice('user-'.length).replace('added', 'create').replace('updated', 'update').replace('removed', 'delete');
        // A user created by an OIDC login says which IdP groups it came with (later changes: see users.update).
        const groups = c.kind === 'user-added' && c.user.idpGroups?.length ? ` ${idpGroupChanges([], c.user.idpGroups)}` : '';
        notes.push({ action: `user.${verb}`, object: `user:${c.user.id}`, summary: `${c.user.name}${groups}` });
        break;
      }
      // Policy and DNS writes give their own notes (the access diff, the changed fields).
    }
  }
  return notes;
}
