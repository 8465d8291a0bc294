/**
 * Applies a whole plan in one request (POST /api/v1/batch): the server writes every change or none, checks the
 * policy against the tailnet as the plan leaves it, and refuses the batch if the policy changed since the plan
 * was made — so a refused, interrupted or raced apply leaves the tailnet as it was.
 */
import type { AdminClient } from '../client/admin-client.ts';
import { defaultKeyLifetimeMs, tailnetApi } from '../client/tailnet-api.ts';
import type { BatchOperation } from '../domain/batch.ts';
import type { ApplyResult } from './apply.ts';
import { resolveExpiration } from './match.ts';
import type { Change, Plan } from './plan.ts';

/** The batch operations that carry out one change. */
export function changeOperations(change: Change, now: Date): BatchOperation[] {
  switch (change.kind) {
    case 'user': {
      const { displayName, email } = change.user ?? {};
      if (change.action === 'delete') return [{ op: 'user.delete', id: change.id! }];
      if (change.action === 'create') return [{ op: 'user.create', name: change.name, displayName, email }];
      return [{ op: 'user.update', id: change.id!, displayName, email }];
    }
    case 'policy':
      return [{ op: 'policy.set', policy: change.text }];
    case 'dns':
      return [{ op: 'dns.set', dns: change.settings }];
    case 'node':
      return change.diffs.map((d): BatchOperation => {
        if (d.path === 'tags') return { op: 'node.tags', id: change.id, tags: d.after as string[] };
        if (d.path === 'approvedRoutes') return { op: 'node.routes', id: change.id, routes: d.after as string[] };
        if (d.path === 'givenName') return { op: 'node.rename', id: change.id, name: String(d.after) };
        if (d.path === 'keyExpiryDisabled') {
          return { op: 'node.expiry', id: change.id, expiry: d.after ? null : new Date(now.getTime() + defaultKeyLifetimeMs).toISOString() };
        }
        throw new Error(`unknown node attribute ${d.path}`);
      });
    case 'preauthkey': {
      const k = change.key;
      const expiration = resolveExpiration(k.expiration, now) ?? null;
      return [{ op: 'preauthkey.create', user: k.user, tags: [...(k.tags ?? [])], reusable: k.reusable ?? false, ephemeral: k.ephemeral ?? false, expiration }];
    }
  }
}

export interface AtomicApplyOptions {
  /** The ETag of the live policy the plan was made against: the batch is refused if the policy changed since. */
  policyEtag: string | undefined;
  /** Fence the batch with a lease the caller holds. */
  lease?: { name: string; holder: string };
  /** The desired state's revision (a Git commit, or `sha256:<hex>` of a file), for the audit log. */
  revision?: string;
  now?: Date;
}

/** Applies every change of the plan, or none (the server's refusal is thrown as an ApiError). */
export async function applyPlanAtomically(client: AdminClient, plan: Plan, opts: AtomicApplyOptions): Promise<ApplyResult> {
  if (plan.changes.length === 0) return { applied: [], createdKeys: [] };
  const now = opts.now ?? new Date();
  const owners: Change[] = [];
  const operations = plan.changes.flatMap((c) => changeOperations(c, now).map((o) => (owners.push(c), o)));
  const { results } = await tailnetApi(client).batch({
    operations,
    ...(opts.policyEtag !== undefined ? { ifMatch: opts.policyEtag } : {}),
    ...(opts.lease ? { lease: opts.lease } : {}),
    ...(opts.revision ? { revision: opts.revision } : {}),
  });
  const createdKeys = results.flatMap((r, i) => {
    const c = owners[i]!;
    return r.key && c.kind === 'preauthkey' ? [{ name: c.name, id: r.id!, key: r.key }] : [];
  });
  return { applied: plan.changes, createdKeys };
}
