/**
 * `tailplane policy get|set|check|diff|compile`: the tailnet's HuJSON policy, validated by the server before it
 * is stored, or offline (`check --offline`, `compile --topology`) with no server at all.
 */
import { readFileSync } from 'node:fs';
import { ApiError } from '../../client/admin-client.ts';
import { checkPolicy, parsePolicy, type AccessChange } from '../../policy/index.ts';
import { CliError } from '../args.ts';
import type { Context } from '../context.ts';
import { render, renderObject } from '../output.ts';
import { compileNodes, renderCompiled } from '../policy-compile.ts';
import { readTopologyFile } from '../topology-file.ts';
import type { Command } from './command.ts';

interface PolicyFile {
  readonly text: string;
  /** The name errors quote: the path as given, or <stdin>. */
  readonly name: string;
}

function readPolicyFile(ctx: Context): PolicyFile {
  const file = ctx.need('file');
  try {
    return { text: readFileSync(file === '-' ? 0 : file, 'utf8'), name: file === '-' ? '<stdin>' : file };
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Prints `file:line:col: message` lines (stderr for people, `{valid:false, errors}` for scripts) and exits 1. */
function refused(ctx: Context, errors: readonly string[]): string | undefined {
  process.exitCode = 1;
  if (ctx.format !== 'table') return render(ctx.format, { valid: false, errors }, [], []);
  console.error(errors.join('\n'));
  return undefined;
}

/** Runs a server call; a refused policy comes back as its error lines, renamed from the server's policy.hujson to the user's file. */
async function serverCheck<T>(file: PolicyFile, call: () => Promise<T>): Promise<{ ok: T } | { errors: string[] }> {
  try {
    return { ok: await call() };
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 400) throw err;
    const [head, ...lines] = err.message.split('\n');
    if (!/^(policy refused|invalid policy):$/.test(head ?? '')) throw err;
    return { errors: lines.map((l) => l.replace(/^policy\.hujson:(?=\d+:\d+:)/, `${file.name}:`)) };
  }
}

async function liveErrors(ctx: Context, file: PolicyFile): Promise<string[]> {
  const res = await serverCheck(file, () => ctx.client().post('/api/v1/policy/check', { policy: file.text }));
  return 'errors' in res ? res.errors : [];
}

const fileFlag = { file: { alias: 'f', type: 'string', description: 'policy file (HuJSON), - for stdin' } } as const;

export const policyCommands: Command[] = [
  {
    path: ['policy', 'get'],
    aliases: [['policy', 'show']],
    summary: 'Print the current policy',
    async run(ctx) {
      const res = await ctx.client().get<{ policy: string; updatedAt: string | null }>('/api/v1/policy');
      if (ctx.format !== 'table') return renderObject(ctx.format, res);
      return res.policy.trim() !== '' ? res.policy : 'No policy is set: every node may reach every other (Tailscale\'s default). Set one with "tailplane policy set -f FILE".';
    },
  },
  {
    path: ['policy', 'set'],
    summary: 'Replace the policy from a file (refused if invalid or its tests fail)',
    flags: fileFlag,
    async run(ctx) {
      const file = readPolicyFile(ctx);
      const res = await serverCheck(file, () => ctx.client().put<{ updatedAt: string }>('/api/v1/policy', { policy: file.text }));
      if ('errors' in res) return refused(ctx, res.errors);
      return ctx.format === 'table' ? `policy updated at ${res.ok.updatedAt}` : renderObject(ctx.format, res.ok);
    },
  },
  {
    path: ['policy', 'check'],
    summary: 'Validate a policy file against the live tailnet (or --offline, with no server) without applying it',
    flags: { ...fileFlag, offline: { type: 'boolean', description: 'check locally: syntax, references, tests against an empty tailnet' } },
    async run(ctx) {
      const file = readPolicyFile(ctx);
      const errors = ctx.bool('offline') ? checkPolicy(file.text, file.name).map((e) => e.message) : await liveErrors(ctx, file);
      if (errors.length > 0) return refused(ctx, errors);
      return ctx.format === 'table' ? 'policy is valid' : renderObject(ctx.format, { valid: true });
    },
  },
  {
    path: ['policy', 'diff'],
    summary: 'Show who gains and who loses which access if a policy file replaced the live policy',
    flags: fileFlag,
    async run(ctx) {
      const file = readPolicyFile(ctx);
      const res = await serverCheck(file, () =>
        ctx.client().post<{ changes: AccessChange[]; text: string }>('/api/v1/policy/diff', { policy: file.text }),
      );
      if ('errors' in res) return refused(ctx, res.errors);
      return ctx.format === 'table' ? res.ok.text.trimEnd() : render(ctx.format, res.ok.changes, [], []);
    },
  },
  {
    path: ['policy', 'compile'],
    summary: 'Offline: print each node\'s packet filter, SSH policy and peers for a topology file (from `nodes export`)',
    flags: {
      ...fileFlag,
      topology: { type: 'string', description: 'topology JSON, as written by `tailplane nodes export`' },
      node: { type: 'string', description: 'only this node (by name)' },
      'server-url': { type: 'string', description: 'server URL for SSH check-mode actions (as the server would send)' },
    },
    async run(ctx) {
      const file = readPolicyFile(ctx);
      const topology = readTopologyFile(ctx.need('topology'));
      const only = ctx.flag('node');
      const nodes = only === undefined ? topology.nodes : topology.nodes.filter((n) => n.name === only);
      if (nodes.length === 0 && only !== undefined) throw new CliError(`node "${only}" is not in ${ctx.need('topology')}`);
      // The server would refuse a policy whose tests fail on this tailnet, so compile refuses it too.
      const errors = checkPolicy(file.text, file.name, topology).map((e) => e.message);
      if (errors.length > 0) return refused(ctx, errors);
      const compiled = compileNodes(parsePolicy(file.text, file.name), topology, { nodes: nodes.map((n) => n.id), serverUrl: ctx.flag('server-url') });
      return ctx.format === 'table' ? renderCompiled(compiled, topology) : render(ctx.format, compiled, [], []);
    },
  },
];
