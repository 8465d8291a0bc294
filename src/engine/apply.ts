/**
 * Executes a plan change by change through the admin API. A policy is checked by the server (and the policy
 * engine) before anything is written, so a refused policy leaves the tailnet untouched; every run re-plans from
 * the live state, so a rerun after a failure finishes the job and a second apply changes nothing.
 */
import type { AdminClient } from '../client/admin-client.ts';
import type { ApiPreAuthKey, ApiUser } from '../domain/api.ts';
import type { DesiredState } from './desired.ts';
import { readLive } from './live.ts';
import { resolveExpiration } from './match.ts';
import { planChanges, type Change, type Plan } from './plan.ts';

export type Progress =
  | { readonly type: 'start' | 'done'; readonly change: Change; readonly index: number; readonly total: number }
  | { readonly type: 'failed'; readonly change: Change; readonly index: number; readonly total: number; readonly error: string };

export interface ApplyOptions {
  onProgress?: (p: Progress) => void | Promise<void>;
  now?: () => Date;
}

export interface ApplyResult {
  readonly applied: readonly Change[];
  /** The change that failed (apply stops there); undefined when every change was applied. */
  readonly failed?: { readonly change: Change; readonly error: string };
  /** Secrets of the pre-auth keys created by this run: shown once, never stored by tailplane. */
  readonly createdKeys: readonly { readonly name: string; readonly id: string; readonly key: string }[];
}

/** Lifetime given to a node whose key expiry is turned back on (Tailscale's default key expiry). */
const reenabledExpiryMs = 180 * 86_400_000;

/** Thrown when a policy the plan would write is refused; nothing has been changed. */
export class PolicyRefusedError extends Error {}

/** Asks the server (and reads the policy engine's review) whether the plan's policy may be written. */
export async function checkPlanPolicy(client: AdminClient, plan: Plan): Promise<void> {
  for (const change of plan.changes) {
    if (change.kind !== 'policy') continue;
    try {
      await client.post('/api/v1/policy/check', { policy: change.text });
    } catch (err) {
      throw new PolicyRefusedError(`the server refuses the policy: ${(err as Error).message}`);
    }
    if (change.problems.length > 0) throw new PolicyRefusedError(`the policy engine refuses the policy:\n${change.problems.join('\n')}`);
  }
}

/** Runs one change; returns the created pre-auth key's secret when the change made one. */
export async function applyChange(client: AdminClient, change: Change, now = new Date()): Promise<{ id: string; key: string } | undefined> {
  switch (change.kind) {
    case 'user':
      if (change.action === 'delete') await client.delete(`/api/v1/user/${change.id}`);
      else if (change.action === 'create') await createUser(client, change.name, change.user ?? { name: change.name });
      else await client.put(`/api/v1/user/${change.id}`, { displayName: change.user?.displayName, email: change.user?.email });
      return undefined;
    case 'policy':
      await client.post('/api/v1/policy/check', { policy: change.text });
      await client.put('/api/v1/policy', { policy: change.text });
      return undefined;
    case 'dns':
      await client.put('/api/v1/dns', change.settings);
      return undefined;
    case 'node':
      for (const d of change.diffs) await setNodeAttribute(client, change.id, d.path, d.after, now);
      return undefined;
    case 'preauthkey':
      return createPreAuthKey(client, change, now);
  }
}

async function createUser(client: AdminClient, name: string, u: { displayName?: string; email?: string }): Promise<void> {
  await client.post('/api/v1/user', { name, ...(u.displayName !== undefined ? { displayName: u.displayName } : {}), ...(u.email !== undefined ? { email: u.email } : {}) });
}

async function setNodeAttribute(client: AdminClient, id: string, attribute: string, value: unknown, now: Date): Promise<void> {
  const base = `/api/v1/node/${id}`;
  if (attribute === 'tags') await client.post(`${base}/tags`, { tags: value });
  else if (attribute === 'approvedRoutes') await client.post(`${base}/approve_routes`, { routes: value });
  else if (attribute === 'givenName') await client.post(`${base}/rename/${encodeURIComponent(String(value))}`);
  else if (attribute === 'keyExpiryDisabled') {
    const body = value ? { disableExpiry: true } : { expiry: new Date(now.getTime() + reenabledExpiryMs).toISOString() };
    await client.post(`${base}/expire`, body);
  } else throw new Error(`unknown node attribute ${attribute}`);
}

async function createPreAuthKey(client: AdminClient, change: Extract<Change, { kind: 'preauthkey' }>, now: Date) {
  const k = change.key;
  let user: string | undefined;
  if (k.user !== undefined) {
    const found = (await client.get<{ users: ApiUser[] }>(`/api/v1/user?name=${encodeURIComponent(k.user)}`)).users[0];
    if (!found) throw new Error(`user "${k.user}" not found`);
    user = found.id;
  }
  const expiration = resolveExpiration(k.expiration, now);
  const res = await client.post<{ preAuthKey: ApiPreAuthKey }>('/api/v1/preauthkey', {
    ...(user !== undefined ? { user } : {}),
    ...(k.tags ? { aclTags: [...k.tags] } : {}),
    reusable: k.reusable ?? false,
    ephemeral: k.ephemeral ?? false,
    ...(expiration ? { expiration } : {}),
  });
  return { id: res.preAuthKey.id, key: res.preAuthKey.key };
}

/** Applies a plan in order and stops at the first failure; a refused policy throws PolicyRefusedError before any write. */
export async function applyPlan(client: AdminClient, plan: Plan, opts: ApplyOptions = {}): Promise<ApplyResult> {
  await checkPlanPolicy(client, plan);
  const now = opts.now ?? (() => new Date());
  const applied: Change[] = [];
  const createdKeys: { name: string; id: string; key: string }[] = [];
  const total = plan.changes.length;
  for (const [index, change] of plan.changes.entries()) {
    await opts.onProgress?.({ type: 'start', change, index, total });
    try {
      const key = await applyChange(client, change, now());
      if (key && change.kind === 'preauthkey') createdKeys.push({ name: change.name, ...key });
    } catch (err) {
      const error = (err as Error).message;
      await opts.onProgress?.({ type: 'failed', change, index, total, error });
      return { applied, failed: { change, error }, createdKeys };
    }
    applied.push(change);
    await opts.onProgress?.({ type: 'done', change, index, total });
  }
  return { applied, createdKeys };
}

/** Reads the live state, plans, and applies: what `tailplane apply --auto-approve` and the provider's converge do. */
export async function converge(client: AdminClient, desired: DesiredState, opts: ApplyOptions = {}): Promise<{ plan: Plan; result: ApplyResult }> {
  const plan = planChanges(desired, await readLive(client), opts.now?.());
  return { plan, result: await applyPlan(client, plan, opts) };
}
