/**
 * Machines: the list (search; filters by user, tag, online, routes, key expiry, client version; paged, so 10,000
 * machines answer quickly; rows re-fetched live on server-sent events) and one machine's page with its actions:
 * rename, retag, approve routes, expire its key or disable expiry, delete. Each action calls the same
 * tailnet.nodes function as the admin API v1 node routes.
 */
import type { FastifyInstance } from 'fastify';
import { isExitRoute, servingRoutes } from '../../domain/routes.ts';
import type { Node, User } from '../../domain/types.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { actionForm, csrfField, html, when, type Html } from '../html.ts';
import type { Console, Ctx, Form } from '../plugin.ts';

export const pageSize = 100;
/** "Expiring soon" means within this long. */
const soonMs = 7 * 86_400_000;

export interface MachineFilters {
  q?: string;
  user?: string;
  tag?: string;
  online?: string;
  routes?: string;
  expiry?: string;
  version?: string;
  page?: string;
}

const str = (v: unknown) => (typeof v === 'string' ? v : '');
const osOf = (n: Node) => str(n.hostinfo.OS);
const versionOf = (n: Node) => str(n.hostinfo.IPNVersion);
/** What the client calls itself now (its latest Hostinfo), falling back to the name it registered with. */
const hostnameOf = (n: Node) => str(n.hostinfo.Hostname) || n.hostname;

/** The machines that pass the filters, sorted by name, and the requested page of them. */
export function filterMachines(t: Tailnet, f: MachineFilters, now = Date.now()) {
  const q = (f.q ?? '').trim().toLowerCase();
  const users = new Map(t.users.list().map((u) => [u.id, u]));
  const matches = (n: Node) => {
    if (q) {
      const owner = n.userId !== null ? (users.get(n.userId)?.name ?? '') : '';
      const hay = `${n.givenName} ${hostnameOf(n)} ${n.ipv4} ${n.ipv6} ${owner} ${n.tags.join(' ')}`.toLowerCase();
      if (!hay.includes(q)) return false;
    }
    if (f.user && String(n.userId) !== f.user) return false;
    if (f.tag && !n.tags.includes(f.tag)) return false;
    if (f.online && t.nodes.isOnline(n.id) !== (f.online === 'yes')) return false;
    if (f.routes === 'advertised' && n.availableRoutes.length === 0) return false;
    if (f.routes === 'pending' && !n.availableRoutes.some((r) => !n.approvedRoutes.includes(r))) return false;
    if (f.expiry) {
      const exp = n.expiry === null ? null : Date.parse(n.expiry);
      if (f.expiry === 'disabled' && exp !== null) return false;
      if (f.expiry === 'expired' && (exp === null || exp > now)) return false;
      if (f.expiry === 'soon' && (exp === null || exp <= now || exp > now + soonMs)) return false;
    }
    if (f.version && versionOf(n) !== f.version) return false;
    return true;
  };
  const all = t.nodes.list().filter(matches).sort((a, b) => (a.givenName < b.givenName ? -1 : a.givenName > b.givenName ? 1 : 0));
  const pages = Math.max(1, Math.ceil(all.length / pageSize));
  const page = Math.min(pages, Math.max(1, Number.parseInt(f.page ?? '1', 10) || 1));
  return { total: all.length, page, pages, nodes: all.slice((page - 1) * pageSize, page * pageSize), users };
}

const ownerOf = (n: Node, users: ReadonlyMap<number, User>) =>
  n.tags.length > 0 ? html`${n.tags.map((tag) => html`<span class="tag">${tag}</span> `)}` : html`${n.userId !== null ? (users.get(n.userId)?.name ?? '?') : ''}`;

const status = (online: boolean) => html`<span class="status ${online ? 'online' : 'offline'}">${online ? 'Online' : 'Offline'}</span>`;

function expiryLabel(n: Node, now: number): Html {
  if (n.expiry === null) return html`<span class="muted">disabled</span>`;
  const t = Date.parse(n.expiry);
  if (t <= now) return html`<span class="warn">expired</span>`;
  return html`${t - now < soonMs ? html`<span class="warn">soon</span> ` : ''}${when(n.expiry)}`;
}

/** The table rows, also sent alone when the live script re-fetches the list. */
export function machineRows(t: Tailnet, f: MachineFilters): { rows: Html; summary: string; pager: Html } {
  const now = Date.now();
  const r = filterMachines(t, f, now);
  const rows = r.nodes.map(
    (n) => html`<tr data-node="${n.id}"><td><a href="/admin/machines/${n.id}">${n.givenName}</a>${hostnameOf(n) !== n.givenName ? html`<div class="muted">${hostnameOf(n)}</div>` : ''}</td>
<td>${ownerOf(n, r.users)}</td><td>${n.ipv4}<div class="muted">${n.ipv6}</div></td><td>${versionOf(n)}<div class="muted">${osOf(n)}</div></td>
<td>${routeBadges(n)}</td><td>${status(t.nodes.isOnline(n.id))}<div class="muted">${t.nodes.isOnline(n.id) ? '' : `last seen ${when(n.lastSeen)}`}</div></td><td>${expiryLabel(n, now)}</td></tr>`,
  );
  const summary = `${r.total} machine${r.total === 1 ? '' : 's'}${r.pages > 1 ? `, page ${r.page} of ${r.pages}` : ''}`;
  const link = (p: number, label: string) => {
    const q = new URLSearchParams(Object.entries({ ...f, page: String(p) }).filter(([, v]) => v) as [string, string][]);
    return html`<a href="/admin/machines?${q.toString()}">${label}</a>`;
  };
  const pager = r.pages > 1 ? html`<nav aria-label="Pages" class="pager">${r.page > 1 ? link(r.page - 1, 'Previous page') : ''} ${r.page < r.pages ? link(r.page + 1, 'Next page') : ''}</nav>` : html``;
  return { rows: html`${rows}`, summary, pager };
}

function routeBadges(n: Node): Html {
  const pending = n.availableRoutes.filter((r) => !n.approvedRoutes.includes(r));
  const serving = servingRoutes(n);
  return html`${serving.some(isExitRoute) ? html`<span class="tag">exit node</span> ` : ''}${serving.filter((r) => !isExitRoute(r)).map((r) => html`<span class="tag">${r}</span> `)}${
    pending.length ? html`<span class="warn">${pending.length} awaiting approval</span>` : ''
  }`;
}

function select(name: string, label: string, value: string | undefined, options: [string, string][]): Html {
  return html`<label>${label} <select name="${name}"><option value="">any</option>${options.map(
    ([v, l]) => html`<option value="${v}"${v === value ? html` selected` : ''}>${l}</option>`,
  )}</select></label>`;
}

function filterForm(t: Tailnet, f: MachineFilters): Html {
  const nodes = t.nodes.list();
  const tags = [...new Set(nodes.flatMap((n) => n.tags))].sort();
  const versions = [...new Set(nodes.map(versionOf).filter(Boolean))].sort();
  return html`<form method="get" action="/admin/machines" class="filters" role="search">
<label>Search <input type="search" name="q" value="${f.q ?? ''}" placeholder="name, address, owner, tag"></label>
${select('user', 'User', f.user, t.users.list().map((u) => [String(u.id), u.name]))}
${select('tag', 'Tag', f.tag, tags.map((x) => [x, x]))}
${select('online', 'Status', f.online, [['yes', 'online'], ['no', 'offline']])}
${select('routes', 'Routes', f.routes, [['advertised', 'advertises routes'], ['pending', 'awaiting approval']])}
${select('expiry', 'Key expiry', f.expiry, [['soon', 'within 7 days'], ['expired', 'expired'], ['disabled', 'disabled']])}
${select('version', 'Client version', f.version, versions.map((v) => [v, v]))}
<button type="submit">Filter</button></form>`;
}

export function machinePages(app: FastifyInstance, con: Console): void {
  const t = con.deps.tailnet;

  app.get<{ Querystring: MachineFilters }>('/machines', async (req, reply) => {
    const { rows, summary, pager } = machineRows(t, req.query);
    // The live script asks for the rows alone.
    if (req.headers['x-fragment'] === 'rows') return reply.type('text/html; charset=utf-8').header('x-summary', summary).send(rows.text);
    return con.page(
      reply,
      req,
      'Machines',
      html`${filterForm(t, req.query)}<p id="machine-count" role="status" aria-live="polite">${summary}</p>
<table class="machines" data-live="/admin/events" data-live-rows="machine-rows" data-live-count="machine-count"><caption class="sr-only">Machines</caption><thead><tr><th scope="col">Machine</th><th scope="col">Owner</th><th scope="col">Addresses</th><th scope="col">Version</th><th scope="col">Routes</th><th scope="col">Status</th><th scope="col">Key expiry</th></tr></thead>
<tbody id="machine-rows">${rows}</tbody></table>${pager}`,
    );
  });

  app.get<{ Params: { id: string } }>('/machines/:id', async (req, reply) => {
    const n = /^\d+$/.test(req.params.id) ? t.nodes.find(Number(req.params.id)) : undefined;
    if (!n) return con.page(reply, req, 'Machine not found', html`<p>No machine with id ${req.params.id}. <a href="/admin/machines">All machines</a></p>`, 404);
    return con.page(reply, req, n.givenName, machineBody(t, n, con.ctx(req), con.deps.primaryRoutes()));
  });

  const back = (req: { params: Record<string, string> }) => `/admin/machines/${req.params.id}`;
  const done = (req: { params: Record<string, string> }, message: string) => ({ to: back(req), message });
  const id = (req: { params: Record<string, string> }) => Number(req.params.id);
  con.action<Form>('/machines/:id/rename', 'machines', (req) => {
    const n = t.nodes.rename(id(req), str(req.body.name).trim());
    return done(req, `Renamed to ${n.givenName}.`);
  }, back);
  con.action<Form>('/machines/:id/tags', 'machines', (req) => {
    const tags = str(req.body.tags).split(/[\s,]+/).filter(Boolean);
    t.nodes.setTags(id(req), tags);
    return done(req, tags.length ? `Tags set to ${tags.join(', ')}.` : 'Tags removed.');
  }, back);
  con.action<Form>('/machines/:id/routes', 'routes', (req) => {
    const routes = [req.body.route ?? []].flat();
    t.nodes.approveRoutes(id(req), routes);
    return done(req, routes.length ? `Approved routes: ${routes.join(', ')}.` : 'No routes approved.');
  }, back);
  con.action('/machines/:id/expire', 'machines', (req) => {
    t.nodes.setExpiry(id(req), new Date().toISOString());
    return done(req, 'Key expired: the machine must log in again.');
  }, back);
  con.action('/machines/:id/disable-expiry', 'machines', (req) => {
    t.nodes.setExpiry(id(req), null);
    return done(req, 'Key expiry disabled.');
  }, back);
  con.action('/machines/:id/delete', 'machines', (req) => {
    const n = t.nodes.remove(id(req));
    return { to: '/admin/machines', message: `Deleted ${n.givenName}.` };
  }, back);
}

function machineBody(t: Tailnet, n: Node, ctx: Ctx, primaries: ReadonlyMap<string, number>): Html {
  const csrf = ctx.session.csrf;
  const owner = n.userId !== null ? t.users.list().find((u) => u.id === n.userId)?.name : undefined;
  const routes = [...new Set([...n.availableRoutes, ...n.approvedRoutes])].sort();
  const endpoints = n.endpoints.map((e) => e.addr);
  const field = (label: string, value: Html | string) => html`<dt>${label}</dt><dd>${value}</dd>`;
  const base = `/admin/machines/${n.id}`;
  return html`<p><a href="/admin/machines">All machines</a></p>
<dl class="details">
${field('Status', status(t.nodes.isOnline(n.id)))}
${field('Hostname', hostnameOf(n))}
${field('FQDN', `${n.givenName}.${t.dns().baseDomain}`)}
${field('Addresses', `${n.ipv4}, ${n.ipv6}`)}
${field('Owner', n.tags.length ? html`tags ${n.tags.join(', ')}` : (owner ?? ''))}
${field('Exit node', servingRoutes(n).some(isExitRoute) ? 'yes' : n.availableRoutes.some(isExitRoute) ? 'offered, not approved' : 'no')}
${field('Client', `${versionOf(n) || '?'} on ${osOf(n) || '?'}`)}
${field('Endpoints', endpoints.length ? endpoints.join(', ') : '—')}
${field('Last seen', t.nodes.isOnline(n.id) ? 'now' : when(n.lastSeen))}
${field('Key expiry', n.expiry === null ? 'disabled' : when(n.expiry))}
${field('Created', when(n.createdAt))}
</dl>
<h2>Routes</h2>
${routes.length === 0 ? html`<p>This machine advertises no routes.</p>` : html`<form method="post" action="${base}/routes">${csrfField(csrf)}
<table><caption class="sr-only">Routes of ${n.givenName}</caption><thead><tr><th scope="col">Approved</th><th scope="col">Prefix</th><th scope="col">Advertised</th><th scope="col">Primary</th></tr></thead><tbody>
${routes.map((r) => html`<tr><td><input type="checkbox" name="route" value="${r}" id="route-${r}" aria-label="Approve ${r}"${n.approvedRoutes.includes(r) ? html` checked` : ''}${ctx.may('routes') ? '' : html` disabled`}></td>
<td>${r}</td><td>${n.availableRoutes.includes(r) ? 'yes' : 'no'}</td><td>${isExitRoute(r) ? '—' : primaries.get(r) === n.id ? 'primary' : ''}</td></tr>`)}
</tbody></table>${ctx.may('routes') ? html`<button type="submit">Save approved routes</button>` : ''}</form>`}
${ctx.may('machines') ? html`<h2>Actions</h2>
<form method="post" action="${base}/rename" class="row">${csrfField(csrf)}<label>Name <input name="name" value="${n.givenName}" required></label><button type="submit">Rename</button></form>
<form method="post" action="${base}/tags" class="row">${csrfField(csrf)}<label>Tags <input name="tags" value="${n.tags.join(', ')}" placeholder="tag:server, tag:prod"></label><button type="submit">Set tags</button></form>
<div class="row">${actionForm(`${base}/expire`, csrf, 'Expire key', { confirm: `Expire the key of ${n.givenName}? It must log in again.` })}
${actionForm(`${base}/disable-expiry`, csrf, 'Disable key expiry')}
${actionForm(`${base}/delete`, csrf, 'Delete machine', { confirm: `Delete ${n.givenName}? It loses access at once.`, danger: true })}</div>` : ''}`;
}
