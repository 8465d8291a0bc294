/**
 * Access controls: the HuJSON policy in an editor (highlighted by editor.js). "Check and preview" runs the same
 * full check as PUT /api/v1/policy (syntax at line:col, references, the policy's own tests) and shows the access
 * diff against the live policy; only a previewed, unchanged text can then be saved, and only if the live policy
 * did not change meanwhile.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { assertValidPolicy, policyAccessDiff } from '../../admin/policy-checker.ts';
import { policyEtag, writePolicy } from '../../admin/policy-write.ts';
import type { AccessChange } from '../../policy/index.ts';
import { StateError } from '../../state/errors.ts';
import { html, type Html } from '../html.ts';
import type { Console, Form } from '../plugin.ts';

const digest = (text: string) => createHash('sha256').update(text).digest('base64url');
const str = (v: unknown) => (typeof v === 'string' ? v : '');
/** Browsers submit a textarea with CRLF line ends; the policy is stored with the LF it was written with. */
const policyOf = (body: Form) => str(body.policy).replace(/\r\n/g, '\n');

/** `policy.hujson:12:7: message` as a list item that names (and lets the editor jump to) its line. */
function errorItem(message: string): Html {
  const m = /^[^:\n]+:(\d+):(\d+): ([\s\S]*)$/.exec(message);
  if (!m) return html`<li>${message}</li>`;
  return html`<li data-line="${m[1]}" data-col="${m[2]}"><strong>Line ${m[1]}, column ${m[2]}:</strong> ${m[3]}</li>`;
}

function diffTable(changes: readonly AccessChange[]): Html {
  if (changes.length === 0) return html`<p id="access-diff">No one gains or loses any access.</p>`;
  return html`<table id="access-diff"><caption>Access diff against the live policy</caption><thead><tr><th scope="col">Change</th><th scope="col">Who</th><th scope="col">To</th><th scope="col">Ports</th><th scope="col">Protocols</th></tr></thead><tbody>
${changes.map((c) => html`<tr class="${c.change}"><td>${c.change === 'gain' ? 'gains' : 'loses'}</td><td>${c.src.identity}${c.src.nodes.length ? html`<div class="muted">${c.src.nodes.join(', ')}</div>` : ''}</td><td>${c.dst}</td><td>${c.ports}</td><td>${c.proto}</td></tr>`)}
</tbody></table>`;
}

export function policyPages(app: FastifyInstance, con: Console): void {
  const t = con.deps.tailnet;
  const render = (
    req: FastifyRequest,
    reply: FastifyReply,
    text: string,
    base: string,
    result?: { errors: string[] } | { changes: readonly AccessChange[] },
  ) => {
    const ctx = con.ctx(req);
    const canSave = ctx.may('policy');
    const errors = result && 'errors' in result ? result.errors : [];
    const previewed = result && 'changes' in result;
    return con.page(
      reply,
      req,
      'Access controls',
      html`<p>The tailnet policy (HuJSON). ${t.policy() ? `Last saved ${t.policy()!.updatedAt}.` : 'No policy saved yet: everyone may reach everything.'}
${canSave ? '' : html` <strong>Your role (${ctx.role}) may read the policy but not change it.</strong>`}
<a href="/admin/acls/reach">What can a user, group, tag or machine reach?</a></p>
${errors.length ? html`<div role="alert" class="flash error" id="policy-errors"><p>The policy was refused:</p><ul>${errors.map(errorItem)}</ul></div>` : ''}
<form method="post" action="/admin/acls/preview" class="policy"><input type="hidden" name="_csrf" value="${ctx.session.csrf}">
<input type="hidden" name="base" value="${base}">${previewed ? html`<input type="hidden" name="previewed" value="${digest(text)}">` : ''}
<label for="policy">Policy file</label>
<textarea id="policy" name="policy" rows="30" spellcheck="false" autocomplete="off" data-editor="hujson">${text}</textarea>
<div class="row"><button type="submit">Check and preview</button>${
        previewed && canSave ? html`<button type="submit" formaction="/admin/acls/save" class="primary">Save policy</button>` : ''
      }</div></form>
${previewed ? html`<h2>Before you save</h2><p role="status">The policy is valid and its tests pass.</p>${diffTable(result.changes)}` : ''}`,
      errors.length ? 400 : 200,
    );
  };
  const live = () => ({ text: t.policy()?.text ?? '', base: policyEtag(t) });

  /** The check and diff of the API v1 policy routes; refusals become the error list. */
  const preview = (text: string) => {
    try {
      assertValidPolicy(con.deps.policy, text);
      return { changes: policyAccessDiff(t, text).changes };
    } catch (err) {
      if (!(err instanceof StateError)) throw err;
      return { errors: err.message.replace(/^policy refused:\n|^invalid policy:\n/, '').split('\n').filter(Boolean) };
    }
  };

  app.get('/acls', async (req, reply) => render(req, reply, live().text, live().base));

  app.post<{ Body: Form }>('/acls/preview', async (req, reply) => {
    const text = policyOf(req.body);
    return render(req, reply, text, str(req.body.base), preview(text));
  });

  app.post<{ Body: Form }>('/acls/save', async (req, reply) => {
    const ctx = con.ctx(req);
    const text = policyOf(req.body);
    if (!ctx.may('policy')) return con.refuse(reply, req, 'policy');
    if (str(req.body.previewed) !== digest(text)) {
      ctx.session.flash = { kind: 'error', text: 'The policy changed after its preview: check it again before saving.' };
      return render(req, reply, text, str(req.body.base), preview(text));
    }
    if (str(req.body.base) !== live().base) {
      ctx.session.flash = { kind: 'error', text: 'Someone saved the policy since you opened it: review the access diff against the new live policy.' };
      return render(req, reply, text, live().base, preview(text));
    }
    const result = preview(text);
    if ('errors' in result) return render(req, reply, text, live().base, result);
    writePolicy(t, con.deps.policy, text, str(req.body.base));
    ctx.session.flash = { kind: 'ok', text: 'Policy saved: every client gets it now.' };
    return reply.redirect('/admin/acls', 303);
  });
}
