/** The console's page frame: skip link, navigation, who is logged in with which role, logout, and the flash message. */
import { roleSummaries } from '../domain/roles.ts';
import { csrfField, html, type Html } from './html.ts';
import type { Ctx } from './plugin.ts';

const nav: [string, string][] = [
  ['/admin/machines', 'Machines'],
  ['/admin/users', 'Users'],
  ['/admin/keys', 'Keys'],
  ['/admin/acls', 'Access controls'],
  ['/admin/dns', 'DNS'],
  ['/admin/routes', 'Routes'],
  ['/admin/ssh', 'SSH checks'],
  ['/admin/audit', 'Audit log'],
];

export function layout(p: { title: string; body: Html; ctx?: Ctx; flash?: { kind: 'ok' | 'error'; text: string }; path: string }): Html {
  const { ctx, flash } = p;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${p.title} · tailplane</title><link rel="icon" href="/admin/static/favicon.svg"><link rel="stylesheet" href="/admin/static/console.css">
<script type="module" src="/admin/static/console.js"></script></head>
<body>${ctx ? html`<a class="skip" href="#main">Skip to content</a>
<header><nav aria-label="Main"><span class="brand">tailplane</span><ul>${nav.map(
    ([href, label]) => html`<li><a href="${href}"${p.path.startsWith(href) ? html` aria-current="page"` : ''}>${label}</a></li>`,
  )}</ul></nav>
<div class="who">${ctx.key ? html`API key <code>${ctx.key.prefix}</code>` : html`<code>${ctx.session.oidc!.user}</code> (single sign-on)`} · role <strong title="${roleSummaries[ctx.role]}">${ctx.role}</strong>
<form method="post" action="/admin/logout" class="inline">${csrfField(ctx.session.csrf)}<button type="submit">Log out</button></form></div></header>` : ''}
<main id="main"><h1>${p.title}</h1>
${flash ? html`<p role="${flash.kind === 'error' ? 'alert' : 'status'}" class="flash ${flash.kind}">${flash.text}</p>` : ''}
${p.body}</main></body></html>`;
}
