/**
 * Audit log: the newest entries, filtered by object, actor and age through the same read the admin API's
 * GET /api/v1/audit uses; every role may see it, and it is read-only.
 */
import type { FastifyInstance } from 'fastify';
import { parseSince } from '../../admin/routes/audit.ts';
import type { AuditEntry } from '../../audit/chain.ts';
import { html } from '../html.ts';
import type { Console } from '../plugin.ts';

/** The most entries the page shows; the CLI and API page through the rest. */
const shown = 200;

type Query = { object?: string; actor?: string; since?: string };

export function auditPages(app: FastifyInstance, con: Console): void {
  const t = con.deps.tailnet;
  app.get<{ Querystring: Query }>('/audit', async (req, reply) => {
    const q = req.query;
    const since = q.since || '7d';
    const filter = { object: q.object || undefined, actor: q.actor || undefined, since: parseSince(since, new Date()) };
    // Oldest first from the store; the page wants the newest, so walk the pages and keep the tail.
    let entries: AuditEntry[] = [];
    for (let page = t.audit.list(filter); ; page = t.audit.list({ ...filter, after: page.next! })) {
      entries = [...entries, ...page.entries].slice(-shown);
      if (page.next === null) break;
    }
    const input = (name: keyof Query, label: string, value: string, placeholder: string) =>
      html`<label for="${name}">${label}</label><input id="${name}" name="${name}" value="${value}" placeholder="${placeholder}">`;
    return con.page(
      reply,
      req,
      'Audit log',
      html`<form method="get" action="/admin/audit" class="inline">${input('object', 'Object', q.object ?? '', 'node:12')} ${input('actor', 'Actor', q.actor ?? '', 'apikey:…')} ${input('since', 'Since', since, '24h')} <button type="submit">Filter</button></form>
<table><caption class="sr-only">Audit log entries, newest first</caption><thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Door</th><th scope="col">Action</th><th scope="col">Object</th><th scope="col">Change</th></tr></thead><tbody>
${entries.reverse().map((e) => html`<tr><td>${String(e.id)}</td><td>${e.time}</td><td><code>${e.actor}</code><div class="muted">${e.source}</div></td><td>${e.door}</td><td>${e.action}</td><td>${e.object}</td><td><pre>${e.summary}</pre></td></tr>`)}
</tbody></table>`,
    );
  });
}
