/**
 * Route auto-approval: whenever a node advertises routes, changes owner or tags, or the policy changes, the
 * routes the policy's `autoApprovers` allow are added to the node's approved routes — never removed, so an
 * admin's approvals stand. With several replicas, the one where the change was made approves.
 */
import type { Change } from './changes.ts';
import type { PolicyView } from './policy-view.ts';
import type { Tailnet } from './tailnet.ts';

/** Node changes that can make more of its routes auto-approvable. */
const triggers = new Set(['routes', 'tags', 'owner']);

export function createAutoApprover(t: Tailnet, policy: PolicyView, onError: (err: unknown) => void = () => {}) {
  const approve = (id: number): void => {
    const node = t.nodes.find(id);
    if (!node || node.availableRoutes.length === 0) return;
    const wanted = policy.current().autoApprovedRoutes(id, node.availableRoutes);
    const missing = wanted.filter((r) => !node.approvedRoutes.includes(r));
    if (missing.length) t.nodes.approveRoutes(id, [...node.approvedRoutes, ...missing]);
  };
  const affected = (c: Change): number[] => {
    if (c.remote) return [];
    if (c.kind === 'policy-changed') return t.nodes.list().map((n) => n.id);
    if (c.kind === 'node-added') return [c.node.id];
    if (c.kind === 'node-updated' && c.fields.some((f) => triggers.has(f))) return [c.node.id];
    return [];
  };
  // Deferred to a microtask so every listener sees the triggering change before the approval it causes.
  const unsubscribe = t.subscribe((c) => {
    const ids = affected(c);
    if (ids.length === 0) return;
    queueMicrotask(() => {
      for (const id of ids) {
        try {
          approve(id);
        } catch (err) {
          onError(err);
        }
      }
    });
  });
  return { stop: unsubscribe };
}
