/** `tailplane ssh list|approve|deny`: Tailscale SSH sessions held by a "check" rule, and the person's answer. */
import type { ApiSshCheck } from '../../domain/api.ts';
import { UsageError } from '../args.ts';
import type { Context } from '../context.ts';
import { render, type Column } from '../output.ts';
import type { Command } from './command.ts';

const columns: Column<ApiSshCheck>[] = [
  { header: 'ID', value: (c) => c.id },
  { header: 'State', value: (c) => c.state },
  { header: 'User', value: (c) => c.srcUser.name },
  { header: 'From', value: (c) => c.srcNode.name },
  { header: 'To', value: (c) => c.dstNode.name },
  { header: 'Local user', value: (c) => c.localUser },
  { header: 'Created', value: (c) => c.createdAt },
  { header: 'Until', value: (c) => (c.state === 'pending' ? c.deadline : c.validUntil) },
];

/** approve and deny: one check id, then the check as it now stands. */
function decide(verb: 'approve' | 'deny', summary: string): Command {
  return {
    path: ['ssh', verb],
    summary,
    positionals: 'CHECK_ID',
    async run(ctx: Context) {
      const id = ctx.args.positionals[0];
      if (!id) throw new UsageError(`give the check id: tailplane ssh ${verb} CHECK_ID (see "tailplane ssh list")`);
      const { check } = await ctx.client().post<{ check: ApiSshCheck }>(`/api/v1/ssh/checks/${encodeURIComponent(id)}/${verb}`);
      if (ctx.format !== 'table') return render(ctx.format, check, [], []);
      const who = `${check.srcUser.name} (${check.srcNode.name}) as ${check.localUser} on ${check.dstNode.name}`;
      return verb === 'deny' ? `SSH check ${check.id} denied: ${who}` : `SSH check ${check.id} approved: ${who}, until ${check.validUntil ?? 'this session ends'}`;
    },
  };
}

export const sshCommands: Command[] = [
  {
    path: ['ssh', 'list'],
    aliases: [['ssh', 'ls']],
    summary: 'List SSH sessions waiting for a check and approvals still in their check period',
    async run(ctx) {
      const { checks } = await ctx.client().get<{ checks: ApiSshCheck[] }>('/api/v1/ssh/checks');
      return render(ctx.format, checks, checks, columns);
    },
  },
  decide('approve', 'Approve a held SSH session (later ones of that user to that node pass for the check period)'),
  decide('deny', 'Deny a held SSH session'),
];
