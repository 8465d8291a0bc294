/**
 * HTML for the console's server-rendered pages: a tagged template that escapes every interpolated value unless it
 * is already Html (built by this template), so a machine called `<img src=x onerror=alert(1)>` renders as text.
 */

/** Markup that is safe to insert as is: only this module's template makes it. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** A hidden field carrying the session's CSRF token; every state-changing form has one. */
export const csrfField = (token: string) => html`<input type="hidden" name="_csrf" value="${token}">`;

/** A POST form with one button (and optional extra fields, and a fuller accessible label), for the many one-click actions. */
export function actionForm(
  action: string,
  csrf: string,
  text: string,
  opts: { confirm?: string; fields?: Html; danger?: boolean; primary?: boolean; label?: string } = {},
): Html {
  const cls = opts.danger ? 'danger' : opts.primary ? 'primary' : '';
  return html`<form method="post" action="${action}" class="inline"${opts.confirm ? html` data-confirm="${opts.confirm}"` : ''}>${csrfField(csrf)}${opts.fields}<button type="submit"${cls ? html` class="${cls}"` : ''}${opts.label ? html` aria-label="${opts.label}"` : ''}>${text}</button></form>`;
}

/** RFC 3339 time as "2026-12-01 15:57 UTC", or a dash. */
export function when(t: string | null): string {
  return t ? t.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC') : '—';
}
