/**
 * `tailplane plan|apply|drift -f DESIRED`: the engine on the command line (exit codes: plan and drift 0 none,
 * 2 changes; apply 0 done; all 1 on error).
 */
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { hostname } from 'node:os';
import { ApiError } from '../../client/admin-client.ts';
import { tailnetApi } from '../../client/tailnet-api.ts';
import { writeLease } from '../../sync/index.ts';
import {
  applyPlan,
  checkPlanPolicy,
  DesiredStateError,
  driftReport,
  loadDesired,
  planChanges,
  PolicyRefusedError,
  readLive,
  renderDriftMarkdown,
  renderPlan,
  type Plan,
  type Progress,
} from '../../engine/index.ts';
import { CliError, UsageError, type FlagSpecs } from '../args.ts';
import type { Context } from '../context.ts';
import type { Command } from './command.ts';

const fileFlag: FlagSpecs = {
  file: { alias: 'f', type: 'string', description: 'desired state: a .ts/.js module, or a HuJSON/JSON file' },
};
const colorFlag: FlagSpecs = { 'no-color': { type: 'boolean', description: 'plain output even on a terminal (also NO_COLOR or CI)' } };

/** A plan whose policy the engine refuses cannot be applied: exit 1, so a CI job gating on 2 ("changes") stops. */
const exitCodeOf = (plan: Plan, changed: boolean) => (plan.changes.some((c) => c.kind === 'policy' && c.problems.length > 0) ? 1 : changed ? 2 : 0);

const useColor = (ctx: Context) => Boolean(process.stdout.isTTY) && !ctx.bool('no-color') && !process.env.CI && !process.env.NO_COLOR;

async function currentPlan(ctx: Context): Promise<{ plan: Plan; source: string }> {
  const source = ctx.need('file');
  const desired = await loadDesired(source);
  return { plan: planChanges(desired, await readLive(ctx.client())), source };
}

/** Engine commands report every failure as exit 1, since 2 means "there are changes". */
function engineCommand(c: Command): Command {
  return {
    ...c,
    usageExitCode: 1,
    async run(ctx) {
      try {
        return await c.run(ctx);
      } catch (err) {
        const expected = [DesiredStateError, PolicyRefusedError, ApiError, UsageError, CliError].some((E) => err instanceof E);
        console.error(`tailplane: ${(err as Error).message}`);
        if (!expected) console.error((err as Error).stack);
        process.exitCode = 1;
        return undefined;
      }
    },
  };
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return (await rl.question(question)).trim() === 'yes';
  } finally {
    rl.close();
  }
}

function progressLine(p: Progress): string | undefined {
  const step = `[${p.index + 1}/${p.total}]`;
  if (p.type === 'done') return `${step} ${p.change.address}: ${p.change.action}d`;
  if (p.type === 'failed') return `${step} ${p.change.address}: failed: ${p.error}`;
  return undefined;
}

/**
 * Runs the writes under the lease continuous sync takes for its rounds, so a sync round and this apply never
 * interleave; refused (with the holder named) while a round is applying.
 */
async function withWriteLease<T>(ctx: Context, fn: () => Promise<T>): Promise<T> {
  const api = tailnetApi(ctx.client());
  const holder = `apply:${hostname()}:${process.pid}`;
  try {
    await api.acquireLease(writeLease, holder, 600);
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) throw new ApiError(409, `another writer is applying (${err.message}); retry in a moment`);
    throw err;
  }
  try {
    return await fn();
  } finally {
    await api.releaseLease(writeLease, holder).catch(() => undefined);
  }
}

export const engineCommands: Command[] = [
  engineCommand({
    path: ['plan'],
    summary: 'Show what apply would change to make the tailnet match a desired state (exit 2 when it would)',
    flags: { ...fileFlag, json: { type: 'boolean', description: 'print the plan as JSON' }, ...colorFlag },
    async run(ctx) {
      const { plan } = await currentPlan(ctx);
      process.exitCode = exitCodeOf(plan, plan.changes.length > 0);
      return ctx.bool('json') || ctx.format === 'json' ? JSON.stringify(plan, null, 2) : renderPlan(plan, { color: useColor(ctx) });
    },
  }),
  engineCommand({
    path: ['apply'],
    door: 'engine',
    summary: 'Make the tailnet match a desired state (asks first unless --auto-approve)',
    flags: { ...fileFlag, 'auto-approve': { type: 'boolean', description: 'apply without asking' }, ...colorFlag },
    async run(ctx) {
      const { plan } = await currentPlan(ctx);
      console.log(renderPlan(plan, { color: useColor(ctx) }));
      if (plan.changes.length === 0) return undefined;
      await checkPlanPolicy(ctx.client(), plan);
      if (!ctx.bool('auto-approve')) {
        if (!process.stdin.isTTY) throw new UsageError('refusing to apply without confirmation: stdin is not a terminal; pass --auto-approve');
        if (!(await confirm('\nApply these changes? Only "yes" is accepted: '))) {
          process.exitCode = 1;
          return 'Apply cancelled.';
        }
      }
      const result = await withWriteLease(ctx, () =>
        applyPlan(ctx.client(), plan, {
          onProgress: (p) => {
            const line = progressLine(p);
            if (line) console.log(line);
          },
        }),
      );
      const keys = result.createdKeys.map((k) => `pre-auth key ${k.name} (id ${k.id}, shown once): ${k.key}`);
      if (result.failed) {
        process.exitCode = 1;
        return [...keys, `Apply stopped at ${result.failed.change.address} after ${result.applied.length} change(s); rerun apply to finish.`].join('\n');
      }
      return [...keys, `Apply complete: ${result.applied.length} change(s) applied.`].join('\n');
    },
  }),
  engineCommand({
    path: ['drift'],
    summary: 'Report what differs between the live tailnet and a desired state (exit 2 on drift)',
    flags: {
      ...fileFlag,
      markdown: { type: 'string', description: 'also write the Markdown report to this file' },
      json: { type: 'string', description: 'also write the JSON report to this file' },
    },
    async run(ctx) {
      const { plan, source } = await currentPlan(ctx);
      const report = driftReport(plan, { source });
      const markdown = renderDriftMarkdown(report);
      const md = ctx.flag('markdown');
      const json = ctx.flag('json');
      if (md) writeFileSync(md, markdown);
      if (json) writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
      process.exitCode = exitCodeOf(plan, report.drift);
      return markdown;
    },
  }),
];
