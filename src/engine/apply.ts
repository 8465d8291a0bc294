/**
 * Executes a plan change by change through the admin API. A policy is checked by the server (and the policy
 * engine) before anything is written, so a refused policy leaves the tailnet untouched; every run re-plans from
 * the live state, so a rerun after a failure finishes the job and a second apply changes nothing.
 */
import type { AdminClient } from '../client/admin-client.ts';
import { isStalePolicy, tailnetApi, type TailnetApi } from '../client/tailnet-api.ts';
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

/** Thrown when a policy the plan would write is refused; nothing has been changed. */
export class PolicyRefusedError extends Error {}

/** Asks the server (and reads the policy engine's review) whether the plan's policy may be written. */
export async function checkPlanPolicy(client: AdminClient, plan: Plan): Promise<void> {
  for (const change of plan.changes) {
    if (change.kind !== 'policy') continue;
    // The engine's own problems first: they are quoted at their place in the desired file.
    if (change.problems.length > 0) throw new PolicyRefusedError(`the policy engine refuses the policy:\n${change.problems.join('\n')}`);
    try {
      await tailnetApi(client).checkPolicy(change.text);
    } catch (err) {
      throw new PolicyRefusedError(`the server refuses the policy: ${(err as Error).message}`);
    }
  }
}

/** Runs one change; returns the created pre-auth key's secret when the change made one. */
export async function applyChange(client: AdminClient, change: Change, now = new Date()): Promise<{ id: string; key: string } | undefined> {
  const api = tailnetApi(client);
  switch (change.kind) {
    case 'user': {
      const { displayName, email } = change.user ?? {};
      if (change.action === 'delete') await api.deleteUser(change.id!);
      else if (change.action === 'create') await api.createUser({ name: change.name, displayName, email });
      else await api.updateUser(change.id!, { displayName, email });
      return undefined;
    }
    case 'policy':
      await api.checkPolicy(change.text);
      try {
        await api.setPolicy(change.text, change.etag);
      } catch (err) {
        if (!isStalePolicy(err)) throw err;
        throw new Error('the policy was changed by someone else since this plan was made; nothing was overwritten: plan again');
      }
      return undefined;
    case 'dns':
      await api.setDns(change.settings);
      return undefined;
    case 'node':
      for (const d of change.diffs) await setNodeAttribute(api, change.id, d.path, d.after, now);
      return undefined;
    case 'preauthkey':
      return createPreAuthKey(api, change, now);
  }
}

async function setNodeAttribute(api: TailnetApi, id: string, attribute: string, value: unknown, now: Date): Promise<void> {
  if (attribute === 'tags') await api.setNodeTags(id, value as string[]);
  else if (attribute === 'approvedRoutes') await api.approveNodeRoutes(id, value as string[]);
  else if (attribute === 'givenName') await api.renameNode(id, String(value));
  else if (attribute === 'keyExpiryDisabled') await api.setNodeKeyExpiryDisabled(id, Boolean(value), now);
  else throw new Error(`unknown node attribute ${attribute}`);
}

async function createPreAuthKey(api: TailnetApi, change: Extract<Change, { kind: 'preauthkey' }>, now: Date) {
  const k = change.key;
  let user: string | null = null;
  if (k.user !== undefined) {
    const found = await api.findUser(k.user);
    if (!found) throw new Error(`user "${k.user}" not found`);
    user = found.id;
  }
  const created = await api.createPreAuthKey({
    user,
    tags: k.tags ? [...k.tags] : [],
    reusable: k.reusable ?? false,
    ephemeral: k.ephemeral ?? false,
    expiration: resolveExpiration(k.expiration, now) ?? null,
  });
  return { id: created.id, key: created.key };
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
