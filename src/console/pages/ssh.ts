/**
 * SSH checks: Tailscale SSH sessions a "check" rule holds until a person answers, with Approve and Deny for the
 * roles that may decide them (src/auth/roles.ts: ssh-checks), and the checks decided in the last hour. The
 * decisions go through the same state functions as POST /api/v1/ssh/checks/:id/approve|deny; the lists update
 * live from the console's event stream ("ssh-check" events).
 */
import type { FastifyInstance } from 'fastify';
import type { SshCheck } from '../../domain/types.ts';
import { actionForm, html, when, type Html } from '../html.ts';
import type { Console, Ctx } from '../plugin.ts';

const machine = (id: number, name: string) => html`<a href="/admin/machines/${String(id)}">${name}</a>`;
const who = (c: SshCheck) => html`<td>${c.srcUser}</td><td>${machine(c.srcNodeId, c.srcNode)}</td><td>${machine(c.dstNodeId, c.dstNode)}</td><td><code>${c.localUser}</code>${c.sshUser !== c.localUser ? html`<div class="muted">asked for ${c.sshUser}</div>` : ''}</td>`;
const head = (cols: string[]) => html`<thead><tr>${cols.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>`;

function pendingTable(checks: readonly SshCheck[], ctx: Ctx): Html {
  if (checks.length === 0) return html`<p>No SSH session is waiting for a check.</p>`;
  const decide = ctx.may('ssh-checks');
  const label = (verb: string, c: SshCheck) => `${verb} ${c.srcUser} as ${c.localUser} on ${c.dstNode}`;
  return html`<table id="pending-checks"><caption>Waiting for a decision</caption>${head(['User', 'From', 'To', 'Local user', 'Requested', 'Times out', ...(decide ? ['Decision'] : [])])}<tbody>
${checks.map((c) => html`<tr data-check="${c.id}">${who(c)}<td>${when(c.createdAt)}</td><td>${when(c.deadline)}</td>${
    decide
      ? html`<td>${actionForm(`/admin/ssh/${c.id}/approve`, ctx.session.csrf, 'Approve', { label: label('Approve', c), primary: true })} ${actionForm(`/admin/ssh/${c.id}/deny`, ctx.session.csrf, 'Deny', { label: label('Deny', c), danger: true })}</td>`
      : ''
  }</tr>`)}
</tbody></table>`;
}

function historyTable(checks: readonly SshCheck[]): Html {
  if (checks.length === 0) return html`<p>No check was decided in the last hour.</p>`;
  const outcome = (c: SshCheck) => (c.state === 'timeout' ? 'timed out' : c.state);
  return html`<table id="decided-checks"><caption>Decided (the last hour, and approvals still in their check period)</caption>${head(['Outcome', 'User', 'From', 'To', 'Local user', 'Requested', 'Decided', 'By', 'Admits until'])}<tbody>
${checks.map((c) => html`<tr class="${c.state === 'approved' ? 'gain' : 'loss'}"><td>${outcome(c)}</td>${who(c)}<td>${when(c.createdAt)}</td><td>${when(c.decidedAt)}</td><td>${c.decidedBy ?? '—'}</td><td>${c.state === 'approved' ? (c.validUntil ? when(c.validUntil) : 'that session only') : '—'}</td></tr>`)}
</tbody></table>`;
}

export function sshPages(app: FastifyInstance, con: Console): void {
  const checks = con.deps.tailnet.sshChecks;
  const lists = (ctx: Ctx) => {
    const all = checks.recent();
    return html`${pendingTable(all.filter((c) => c.state === 'pending').reverse(), ctx)}
<h2>History</h2>${historyTable(all.filter((c) => c.state !== 'pending'))}`;
  };

  app.get('/ssh', async (req, reply) => {
    const ctx = con.ctx(req);
    // The live script asks for the lists alone.
    if (req.headers['x-fragment'] === 'rows') return reply.type('text/html; charset=utf-8').send(lists(ctx).text);
    return con.page(
      reply,
      req,
      'SSH checks',
      html`<p>Tailscale SSH sessions that a <code>"check"</code> rule of the policy holds until someone approves them (also
<code>tailplane ssh approve</code>). An approval lets later sessions of the same user to the same machine through for the rule's check period.
${ctx.may('ssh-checks') ? '' : html` <strong>Your role (${ctx.role}) may see the checks but not decide them.</strong>`}
Older decisions are in the <a href="/admin/audit?since=30d">audit log</a>.</p>
<div id="ssh-checks" data-live="/admin/events" data-live-event="ssh-check" data-live-rows="ssh-checks">${lists(ctx)}</div>`,
    );
  });

  /** The decider as the check records it: the API key's prefix (as the API writes it) or the single sign-on user. */
  const by = (ctx: Ctx) => `${ctx.key ? `api-key:${ctx.key.prefix}` : `user:${ctx.session.oidc!.user}`} (console)`;
  const done = (c: SshCheck, verb: string) => ({
    to: '/admin/ssh',
    message: `SSH check ${verb}: ${c.srcUser} (${c.srcNode}) as ${c.localUser} on ${c.dstNode}${c.validUntil ? `, later sessions pass until ${when(c.validUntil)}` : ''}.`,
  });
  con.action('/ssh/:id/approve', 'ssh-checks', (req, ctx) => done(checks.approve(req.params.id!, by(ctx)), 'approved'), () => '/admin/ssh');
  con.action('/ssh/:id/deny', 'ssh-checks', (req, ctx) => done(checks.deny(req.params.id!, by(ctx)), 'denied'), () => '/admin/ssh');
}
