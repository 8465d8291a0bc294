/** Routes: every advertised or approved prefix, its routers, which one is primary, and approve/unapprove per router. */
import type { FastifyInstance } from 'fastify';
import { isExitRoute } from '../../domain/routes.ts';
import { routeTable } from '../../admin/routes/routes.ts';
import { actionForm, html } from '../html.ts';
import type { Console, Form } from '../plugin.ts';

export function routePages(app: FastifyInstance, con: Console): void {
  const t = con.deps.tailnet;
  app.get('/routes', async (req, reply) => {
    const ctx = con.ctx(req);
    const table = routeTable(t, con.deps.primaryRoutes());
    const hidden = (node: string, prefix: string) => html`<input type="hidden" name="node" value="${node}"><input type="hidden" name="prefix" value="${prefix}">`;
    return con.page(
      reply,
      req,
      'Routes',
      table.length === 0
        ? html`<p>No machine advertises a route.</p>`
        : html`<table><caption class="sr-only">Routes</caption><thead><tr><th scope="col">Prefix</th><th scope="col">Router</th><th scope="col">Advertised</th><th scope="col">Approved</th><th scope="col">Primary</th><th scope="col">Status</th>${ctx.may('routes') ? html`<th scope="col">Action</th>` : ''}</tr></thead><tbody>
${table.flatMap((r) => r.routers.map((rt) => html`<tr><th scope="row">${r.prefix}${r.exitRoute ? ' (exit)' : ''}</th><td><a href="/admin/machines/${rt.nodeId}">${rt.name}</a></td><td>${rt.advertised ? 'yes' : 'no'}</td><td>${rt.approved ? 'yes' : 'no'}</td><td>${rt.primary ? 'primary' : ''}</td><td>${rt.online ? 'online' : 'offline'}</td>
${ctx.may('routes') ? html`<td>${actionForm('/admin/routes/approve', ctx.session.csrf, rt.approved ? `Unapprove ${r.prefix} on ${rt.name}` : `Approve ${r.prefix} on ${rt.name}`, { fields: html`${hidden(rt.nodeId, r.prefix)}<input type="hidden" name="approve" value="${rt.approved ? '0' : '1'}">` })}</td>` : ''}</tr>`))}
</tbody></table>`,
    );
  });

  con.action<Form>('/routes/approve', 'routes', (req) => {
    const id = Number(req.body.node);
    const prefix = String(req.body.prefix);
    const node = t.nodes.get(id);
    const approve = req.body.approve === '1';
    const routes = approve ? [...node.approvedRoutes, prefix] : node.approvedRoutes.filter((r) => r !== prefix && !(isExitRoute(prefix) && isExitRoute(r)));
    t.nodes.approveRoutes(id, routes);
    return { to: '/admin/routes', message: `${approve ? 'Approved' : 'Unapproved'} ${prefix} on ${node.givenName}.` };
  }, () => '/admin/routes');
}
