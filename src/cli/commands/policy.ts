/**
 * `tailplane policy get|set|check`: the tailnet's HuJSON policy, validated by the server before it is stored.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../args.ts';
import type { Context } from '../context.ts';
import { renderObject } from '../output.ts';
import type { Command } from './command.ts';

function readPolicyFile(ctx: Context): string {
  const file = ctx.need('file');
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

const fileFlag = { file: { alias: 'f', type: 'string', description: 'policy file (HuJSON), - for stdin' } } as const;

export const policyCommands: Command[] = [
  {
    path: ['policy', 'get'],
    aliases: [['policy', 'show']],
    summary: 'Print the current policy',
    async run(ctx) {
      const res = await ctx.client().get<{ policy: string; updatedAt: string | null }>('/api/v1/policy');
      return ctx.format === 'table' ? res.policy : renderObject(ctx.format, res);
    },
  },
  {
    path: ['policy', 'set'],
    summary: 'Replace the policy from a file (refused if invalid or its tests fail)',
    flags: fileFlag,
    async run(ctx) {
      const res = await ctx.client().put<{ updatedAt: string }>('/api/v1/policy', { policy: readPolicyFile(ctx) });
      return ctx.format === 'table' ? `policy updated at ${res.updatedAt}` : renderObject(ctx.format, res);
    },
  },
  {
    path: ['policy', 'check'],
    summary: 'Validate a policy file against the live tailnet without applying it',
    flags: fileFlag,
    async run(ctx) {
      await ctx.client().post('/api/v1/policy/check', { policy: readPolicyFile(ctx) });
      return ctx.format === 'table' ? 'policy is valid' : renderObject(ctx.format, { valid: true });
    },
  },
];
