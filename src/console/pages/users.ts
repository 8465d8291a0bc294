/** Users: list with their machines, create, rename, and delete behind a page that lists what they still own. */
import type { FastifyInstance } from 'fastify';
import { actionForm, csrfField, html, when } from '../html.ts';
import type { Console, Form } from '../plugin.ts';

const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');

export function userPages(app: FastifyInstance, con: Console): void {
  const t = con.deps.tailnet;
  const machinesOf = (id: number) => t.nodes.list().filter((n) => n.userId === id);

  app.get('/users', async (req, reply) => {
    const ctx = con.ctx(req);
    const csrf = ctx.session.csrf;
    const users = [...t.users.list()].sort((a, b) => a.name.localeCompare(b.name));
    return con.page(
      reply,
      req,
      'Users',
      html`${ctx.may('users') ? html`<form method="post" action="/admin/users" class="row">${csrfField(csrf)}
<label>Name <input name="name" required placeholder="alice@example.com"></label><label>Display name <input name="displayName"></label><label>E-mail <input name="email" type="email"></label>
<button type="submit">Create user</button></form>` : ''}
<table><caption class="sr-only">Users</caption><thead><tr><th scope="col">Name</th><th scope="col">Display name</th><th scope="col">Machines</th><th scope="col">Created</th>${ctx.may('users') ? html`<th scope="col">Actions</th>` : ''}</tr></thead><tbody>
${users.map((u) => html`<tr><td>${u.name}<div class="muted">${u.email}</div></td><td>${u.displayName}</td><td><a href="/admin/machines?user=${u.id}">${machinesOf(u.id).length} machines</a></td><td>${when(u.createdAt)}</td>
${ctx.may('users') ? html`<td><form method="post" action="/admin/users/${u.id}/rename" class="inline">${csrfField(csrf)}<label class="sr-only" for="rename-${u.id}">New name for ${u.name}</label><input id="rename-${u.id}" name="name" value="${u.name}" required><button type="submit">Rename</button></form>
<a href="/admin/users/${u.id}/delete">Delete…</a></td>` : ''}</tr>`)}
</tbody></table>`,
    );
  });

  app.get<{ Params: { id: string } }>('/users/:id/delete', async (req, reply) => {
    const u = t.users.list().find((x) => String(x.id) === req.params.id);
    if (!u) return con.page(reply, req, 'User not found', html`<p><a href="/admin/users">All users</a></p>`, 404);
    const owned = machinesOf(u.id);
    return con.page(
      reply,
      req,
      `Delete ${u.name}?`,
      html`${owned.length ? html`<div role="alert" class="flash error"><p>${u.name} still owns ${owned.length} machine(s); they must be deleted or retagged first:</p>
<ul>${owned.map((n) => html`<li><a href="/admin/machines/${n.id}">${n.givenName}</a></li>`)}</ul></div>` : html`<p>${u.name} owns no machines. Their pre-auth keys are deleted with them.</p>`}
<div class="row">${actionForm(`/admin/users/${u.id}/delete`, con.ctx(req).session.csrf, `Delete ${u.name}`, { danger: true })} <a href="/admin/users">Cancel</a></div>`,
    );
  });

  const back = () => '/admin/users';
  con.action<Form>('/users', 'users', (req) => {
    const u = t.users.create({ name: str(req.body.name), displayName: str(req.body.displayName), email: str(req.body.email) });
    return { to: back(), message: `Created user ${u.name}.` };
  }, back);
  con.action<Form>('/users/:id/rename', 'users', (req) => {
    const u = t.users.rename(Number(req.params.id), str(req.body.name));
    return { to: back(), message: `Renamed to ${u.name}.` };
  }, back);
  con.action('/users/:id/delete', 'users', (req) => {
    const name = t.users.get(Number(req.params.id)).name;
    t.users.remove(Number(req.params.id));
    return { to: back(), message: `Deleted user ${name}.` };
  }, (req) => `/admin/users/${req.params.id}/delete`);
}
