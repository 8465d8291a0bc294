/**
 * DNS: every MagicDNS setting in one form (lists one per line), saved through tailnet.setDns, the function
 * PUT /api/v1/dns calls, so the same checks apply.
 */
import type { FastifyInstance } from 'fastify';
import type { DnsSettings } from '../../domain/types.ts';
import { invalid } from '../../state/errors.ts';
import { csrfField, html } from '../html.ts';
import type { Console, Form } from '../plugin.ts';

const lines = (v: unknown) => (typeof v === 'string' ? v.split(/\r?\n/).map((l) => l.trim()).filter(Boolean) : []);

/** "corp.example: 10.0.0.53, 10.0.0.54" lines into { domain: resolvers }. */
function splitDnsFrom(v: unknown): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  lines(v).forEach((l, i) => {
    const m = /^([^:\s]+)\s*:\s*(.+)$/.exec(l);
    if (!m) throw invalid(`split DNS line ${i + 1}: expected "domain: resolver, resolver", got "${l}"`);
    out[m[1]!] = m[2]!.split(/[\s,]+/).filter(Boolean);
  });
  return out;
}

/** "name A|AAAA value" lines into extra records. */
function recordsFrom(v: unknown): DnsSettings['extraRecords'] {
  return lines(v).map((l, i) => {
    const [name, type, value, ...rest] = l.split(/\s+/);
    if (!value || rest.length || (type !== 'A' && type !== 'AAAA')) throw invalid(`extra records line ${i + 1}: expected "name A|AAAA address", got "${l}"`);
    return { name: name!, type, value };
  });
}

export function dnsPages(app: FastifyInstance, con: Console): void {
  const t = con.deps.tailnet;
  app.get('/dns', async (req, reply) => {
    const ctx = con.ctx(req);
    const d = t.dns();
    const ro = ctx.may('dns') ? '' : html` readonly`;
    const area = (name: string, label: string, value: string, hint: string) =>
      html`<label for="${name}">${label}</label><textarea id="${name}" name="${name}" rows="3" aria-describedby="${name}-hint"${ro}>${value}</textarea><p class="hint" id="${name}-hint">${hint}</p>`;
    return con.page(
      reply,
      req,
      'DNS',
      html`<form method="post" action="/admin/dns" class="stack">${csrfField(ctx.session.csrf)}
<label><input type="checkbox" name="magicDns" value="1"${d.magicDns ? html` checked` : ''}${ctx.may('dns') ? '' : html` disabled`}> MagicDNS (machines reach each other by name)</label>
<label><input type="checkbox" name="overrideLocalDns" value="1"${d.overrideLocalDns ? html` checked` : ''}${ctx.may('dns') ? '' : html` disabled`}> Override local DNS (clients use these nameservers for every name, not only as a fallback)</label>
<label for="baseDomain">Base domain</label><input id="baseDomain" name="baseDomain" value="${d.baseDomain}" required${ro}>
${area('nameservers', 'Nameservers', d.nameservers.join('\n'), 'One IP address or https:// DoH URL per line.')}
${area('searchDomains', 'Search domains', d.searchDomains.join('\n'), 'One domain per line.')}
${area('splitDns', 'Split DNS', Object.entries(d.splitDns).map(([k, v]) => `${k}: ${v.join(', ')}`).join('\n'), 'One "domain: resolver, resolver" per line.')}
${area('extraRecords', 'Extra records', d.extraRecords.map((r) => `${r.name} ${r.type} ${r.value}`).join('\n'), 'One "name A|AAAA address" per line.')}
${ctx.may('dns') ? html`<div class="row"><button type="submit">Save DNS settings</button></div>` : ''}</form>`,
    );
  });

  con.action<Form>('/dns', 'dns', (req) => {
    const b = req.body;
    t.setDns({
      magicDns: b.magicDns === '1',
      overrideLocalDns: b.overrideLocalDns === '1',
      baseDomain: typeof b.baseDomain === 'string' ? b.baseDomain.trim() : '',
      nameservers: lines(b.nameservers),
      searchDomains: lines(b.searchDomains),
      splitDns: splitDnsFrom(b.splitDns),
      extraRecords: recordsFrom(b.extraRecords),
    });
    return { to: '/admin/dns', message: 'DNS settings saved: every client gets them now.' };
  }, () => '/admin/dns');
}
