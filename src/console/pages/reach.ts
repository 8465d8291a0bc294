/**
 * Access controls, "what can X reach / who can reach X": pick a user, group, tag or machine and see where its
 * machines may connect (destinations, ports, protocols), where they may SSH to and as whom, and who may connect
 * or SSH to them. Read off the live compiled policy the control plane sends to clients (src/policy/reach.ts), so
 * it shows what is enforced. A plain GET form: works without script; every role may read it.
 */
import type { FastifyInstance } from 'fastify';
import { reachOf, subjectNodes, type CompiledPolicy, type ReachRow, type ReachSubject } from '../../policy/index.ts';
import { html, type Html } from '../html.ts';
import type { Console } from '../plugin.ts';

/** The form value of a subject: `node:<id>`, `user:<name>`, or the group or tag as the policy names it. */
function parseSubject(value: string): ReachSubject | undefined {
  const m = /^(node|user):(.+)$/.exec(value);
  if (m?.[1] === 'node') return /^\d{1,15}$/.test(m[2]!) ? { kind: 'node', id: Number(m[2]) } : undefined;
  if (m?.[1] === 'user') return { kind: 'user', name: m[2]! };
  if (/^group:./.test(value)) return { kind: 'group', name: value };
  if (/^tag:./.test(value)) return { kind: 'tag', name: value };
  return undefined;
}

/** Every subject the live policy and tailnet know, as [value, label] per kind, for the picker. */
function subjects(c: CompiledPolicy): [string, [string, string][]][] {
  const topo = c.topology;
  const tags = [...new Set([...c.policy.tagOwners.keys(), ...topo.byTag.keys()])].sort();
  return [
    ['Users', topo.users.map((u) => [`user:${u.name}`, u.name])],
    ['Groups', [...c.policy.groups.keys()].sort().map((g) => [g, g])],
    ['Tags', tags.map((t) => [t, t])],
    ['Machines', [...topo.nodes].sort((a, b) => (a.name < b.name ? -1 : 1)).map((n) => [`node:${n.id}`, n.name])],
  ];
}

function picker(c: CompiledPolicy, value: string): Html {
  return html`<form method="get" action="/admin/acls/reach" class="row" role="search"><label for="subject">User, group, tag or machine</label>
<select id="subject" name="subject">${subjects(c).map(
    ([group, options]) =>
      options.length === 0
        ? ''
        : html`<optgroup label="${group}">${options.map(([v, l]) => html`<option value="${v}"${v === value ? html` selected` : ''}>${l}</option>`)}</optgroup>`,
  )}</select> <button type="submit">Show access</button></form>`;
}

/** One table of rows; `other` names the far end's column, `nodesCol` X's machine column (left out for one machine). */
function table(id: string, caption: string, rows: readonly ReachRow[], cols: { other: string; what: string; how: string; nodes?: string }): Html {
  if (rows.length === 0) return html`<p id="${id}">${caption}: nothing.</p>`;
  const peer = (r: ReachRow) => (r.peerId === undefined ? r.peer : html`<a href="/admin/machines/${String(r.peerId)}">${r.peer}</a>`);
  return html`<table id="${id}"><caption>${caption}</caption><thead><tr><th scope="col">${cols.other}</th><th scope="col">${cols.what}</th><th scope="col">${cols.how}</th>${cols.nodes ? html`<th scope="col">${cols.nodes}</th>` : ''}</tr></thead><tbody>
${rows.map((r) => html`<tr><th scope="row">${peer(r)}</th><td>${r.what}</td><td>${r.how}</td>${cols.nodes ? html`<td>${r.nodes.join(', ')}</td>` : ''}</tr>`)}
</tbody></table>`;
}

export function reachPages(app: FastifyInstance, con: Console): void {
  app.get<{ Querystring: { subject?: string } }>('/acls/reach', async (req, reply) => {
    const c = con.deps.livePolicy();
    const value = typeof req.query.subject === 'string' ? req.query.subject : '';
    const intro = html`<p><a href="/admin/acls">Policy file</a> · What a user, group, tag or machine can reach, and who can reach it,
as the live policy is enforced: read from the packet filters and SSH policies the control plane sends to each machine.</p>${picker(c, value)}`;
    if (value === '') return con.page(reply, req, 'What can it reach?', intro);
    const subject = parseSubject(value);
    const ids = subject ? subjectNodes(c, subject) : [];
    const name = subject?.kind === 'node' ? c.topology.byId.get(subject.id)?.name : value.replace(/^user:/, '');
    if (!subject || (subject.kind === 'node' && name === undefined)) {
      return con.page(reply, req, 'What can it reach?', html`${intro}<p role="alert" class="flash error">No user, group, tag or machine "${value}".</p>`, 404);
    }
    const machines = ids.map((id) => c.topology.byId.get(id)!.name).sort();
    if (machines.length === 0) {
      return con.page(reply, req, 'What can it reach?', html`${intro}<h2>${name}</h2><p id="reach-machines">${name} has no machines: the policy gives access to machines, so there is nothing to show yet.</p>`);
    }
    const r = reachOf(c, ids);
    const many = subject.kind !== 'node' ? `Machine of ${name}` : undefined;
    return con.page(
      reply,
      req,
      'What can it reach?',
      html`${intro}<h2>${name}</h2>
${subject.kind !== 'node' ? html`<p id="reach-machines">Machines: ${machines.join(', ')}</p>` : ''}
${table('reaches', `What ${name} can reach`, r.reaches, { other: 'Destination', what: 'Ports', how: 'Protocols', nodes: many })}
${table('ssh-to', `Where ${name} can SSH to`, r.sshTo, { other: 'Machine', what: 'As', how: 'Action', nodes: many })}
${table('reached-by', `Who can reach ${name}`, r.reachedBy, { other: 'Source', what: 'Ports', how: 'Protocols', nodes: many })}
${table('ssh-from', `Who can SSH to ${name}`, r.sshFrom, { other: 'Source', what: 'As', how: 'Action', nodes: many })}`,
    );
  });
}
