/**
 * Keys: pre-auth keys (create, shown once as the `tailscale up` line with a copy button; list; expire) and admin API
 * keys with their roles (create, shown once; list; expire). The secrets are only in the one response that creates
 * them: never in a URL, the session or a log.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { roles, roleSummaries } from '../../domain/roles.ts';
import { invalid, StateError } from '../../state/errors.ts';
import { actionForm, csrfField, html, when, type Html } from '../html.ts';
import type { Console, Form } from '../plugin.ts';

const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
/** "24" hours from now as RFC 3339; empty means no expiry. */
function hoursFromNow(v: string): string | undefined {
  if (!v) return undefined;
  const hours = Number(v);
  if (!Number.isFinite(hours) || hours <= 0 || hours > 1e6) throw invalid(`invalid lifetime "${v}": give a number of hours`);
  return new Date(Date.now() + hours * 3_600_000).toISOString();
}

function shownOnce(label: string, value: string): Html {
  return html`<div class="secret" role="status"><p><strong>${label}</strong> It is shown only now: copy it.</p>
<div class="row"><input id="secret" readonly value="${value}" aria-label="${label}" class="mono"><button type="button" data-copy="secret">Copy</button></div></div>`;
}

export function keyPages(app: FastifyInstance, con: Console): void {
  const t = con.deps.tailnet;

  const render = (req: FastifyRequest, reply: FastifyReply, created?: Html) => {
    const ctx = con.ctx(req);
    const csrf = ctx.session.csrf;
    const users = t.users.list();
    const owner = (id: number | null, tags: readonly string[]) => (tags.length ? tags.join(', ') : (users.find((u) => u.id === id)?.name ?? ''));
    const now = Date.now();
    const live = (exp: string | null) => exp === null || Date.parse(exp) > now;
    return con.page(
      reply,
      req,
      'Keys',
      html`${created ?? ''}<h2>Pre-auth keys</h2>
${ctx.may('keys') ? html`<form method="post" action="/admin/keys/preauth" class="row">${csrfField(csrf)}
<label for="key-user">User</label><select id="key-user" name="user"><option value="">none (tagged machines)</option>${users.map((u) => html`<option value="${u.id}">${u.name}</option>`)}</select>
<label>Tags <input name="tags" placeholder="tag:server"></label>
<label><input type="checkbox" name="reusable" value="1"> Reusable</label><label><input type="checkbox" name="ephemeral" value="1"> Ephemeral</label>
<label>Expires in (hours) <input name="hours" type="number" min="1" value="24"></label><button type="submit">Create pre-auth key</button></form>` : ''}
<table><caption class="sr-only">Pre-auth keys</caption><thead><tr><th scope="col">Key</th><th scope="col">Owner</th><th scope="col">Reusable</th><th scope="col">Ephemeral</th><th scope="col">Used</th><th scope="col">Expires</th>${ctx.may('keys') ? html`<th scope="col">Action</th>` : ''}</tr></thead><tbody>
${t.preAuthKeys.list().map((k) => html`<tr><td class="mono">tpkey-auth-${k.prefix}-…</td><td>${owner(k.userId, k.tags)}</td><td>${k.reusable ? 'yes' : 'no'}</td><td>${k.ephemeral ? 'yes' : 'no'}</td><td>${k.used ? 'yes' : 'no'}</td><td>${live(k.expiration) ? when(k.expiration) : 'expired'}</td>
${ctx.may('keys') ? html`<td>${live(k.expiration) ? actionForm(`/admin/keys/preauth/${k.id}/expire`, csrf, `Expire key ${k.prefix}`) : ''}</td>` : ''}</tr>`)}
</tbody></table>
<h2>API keys</h2>
${ctx.may('apikeys') ? html`<form method="post" action="/admin/keys/api" class="row">${csrfField(csrf)}
<label>Role <select name="role">${roles.map((r) => html`<option value="${r}">${r} (${roleSummaries[r]})</option>`)}</select></label>
<label>Expires in (hours) <input name="hours" type="number" min="1" value="2160"></label><button type="submit">Create API key</button></form>` : ''}
<table><caption class="sr-only">API keys</caption><thead><tr><th scope="col">Prefix</th><th scope="col">Role</th><th scope="col">Expires</th><th scope="col">Last used</th>${ctx.may('apikeys') ? html`<th scope="col">Action</th>` : ''}</tr></thead><tbody>
${t.apiKeys.list().map((k) => html`<tr><td class="mono">${k.prefix}</td><td>${k.role}</td><td>${live(k.expiration) ? when(k.expiration) : 'expired'}</td><td>${when(k.lastSeen)}</td>
${ctx.may('apikeys') ? html`<td>${live(k.expiration) ? actionForm(`/admin/keys/api/${k.id}/expire`, csrf, `Expire API key ${k.prefix}`, { confirm: 'Expire this API key? Sessions using it end at once.' }) : ''}</td>` : ''}</tr>`)}
</tbody></table>`,
    );
  };

  app.get('/keys', async (req, reply) => render(req, reply));

  /** Creation answers with the page itself (not a redirect) so the secret never passes through the session. */
  const create = (area: 'keys' | 'apikeys', make: (body: Form) => Html) =>
    async (req: FastifyRequest<{ Body: Form }>, reply: FastifyReply) => {
      const ctx = con.ctx(req);
      if (!ctx.may(area)) return con.refuse(reply, req, area);
      try {
        return render(req, reply, make(req.body));
      } catch (err) {
        if (!(err instanceof StateError)) throw err;
        ctx.session.flash = { kind: 'error', text: err.message };
        return render(req, reply);
      }
    };

  app.post<{ Body: Form }>('/keys/preauth', create('keys', (b) => {
    const { key } = t.preAuthKeys.create({
      userId: str(b.user) ? Number(b.user) : null,
      tags: str(b.tags).split(/[\s,]+/).filter(Boolean),
      reusable: b.reusable === '1',
      ephemeral: b.ephemeral === '1',
      expiration: hoursFromNow(str(b.hours)),
    });
    return shownOnce('Join a machine with:', `tailscale up --login-server ${con.deps.serverUrl()} --auth-key ${key}`);
  }));
  app.post<{ Body: Form }>('/keys/api', create('apikeys', (b) => {
    const { key, record } = t.apiKeys.create({ role: str(b.role), expiration: hoursFromNow(str(b.hours)) });
    return shownOnce(`New ${record.role} API key:`, key);
  }));

  const back = () => '/admin/keys';
  con.action('/keys/preauth/:id/expire', 'keys', (req) => {
    t.preAuthKeys.expire(Number(req.params.id));
    return { to: back(), message: 'Pre-auth key expired.' };
  }, back);
  con.action('/keys/api/:id/expire', 'apikeys', (req) => {
    t.apiKeys.expire({ id: Number(req.params.id) });
    return { to: back(), message: 'API key expired.' };
  }, back);
}
