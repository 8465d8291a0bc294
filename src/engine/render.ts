/** A plan as text for people: `+ create`, `~ update`, `- delete`, one line per attribute, colour optional. */
import { renderAccessDiff } from '../policy/index.ts';
import type { Change, Plan } from './plan.ts';

const sgr = { green: 32, yellow: 33, red: 31, dim: 2, bold: 1 } as const;
type Paint = (style: keyof typeof sgr, text: string) => string;

const marks = { create: ['+', 'green'], update: ['~', 'yellow'], delete: ['-', 'red'] } as const;

const show = (v: unknown) => (v === undefined ? '(none)' : JSON.stringify(v));

function renderChange(c: Change, paint: Paint): string[] {
  const [mark, colour] = marks[c.action];
  const lines = [paint(colour, `${mark} ${c.address}`)];
  for (const d of c.diffs) {
    const text =
      c.action === 'create' ? `${d.path} = ${show(d.after)}` : c.action === 'delete' ? `${d.path} = ${show(d.before)}` : `${d.path}: ${show(d.before)} -> ${show(d.after)}`;
    lines.push(`    ${paint(colour, mark)} ${text}`);
  }
  if (c.kind === 'policy') {
    for (const p of c.problems) lines.push(paint('red', `    ! ${p}`));
    if (c.accessDiff) {
      lines.push(paint('bold', '    access changes:'));
      for (const l of renderAccessDiff(c.accessDiff).trimEnd().split('\n')) lines.push(`      ${l.startsWith('+') ? paint('green', l) : l.startsWith('-') ? paint('red', l) : l}`);
    }
  }
  return lines;
}

export function renderPlan(plan: Plan, opts: { color?: boolean } = {}): string {
  const paint: Paint = opts.color ? (style, text) => `\x1b[${sgr[style]}m${text}\x1b[0m` : (_, text) => text;
  const count = (a: Change['action']) => plan.changes.filter((c) => c.action === a).length;
  const out = plan.changes.flatMap((c) => renderChange(c, paint));
  if (out.length > 0) out.push('');
  out.push(
    plan.changes.length === 0
      ? 'No changes: the live tailnet matches the desired state.'
      : paint('bold', `Plan: ${count('create')} to create, ${count('update')} to update, ${count('delete')} to delete.`),
  );
  if (plan.waiting.length > 0) out.push(paint('dim', `Waiting for nodes to register: ${plan.waiting.join(', ')}`));
  const { users, nodes, preAuthKeys } = plan.unmanaged;
  if (users.length > 0) out.push(paint('dim', `Unmanaged users (not deleted without prune): ${users.join(', ')}`));
  if (nodes.length > 0) out.push(paint('dim', `Unmanaged nodes: ${nodes.join(', ')}`));
  if (preAuthKeys.length > 0) out.push(paint('dim', `Unmanaged pre-auth keys: ${preAuthKeys.join(', ')}`));
  for (const w of plan.warnings) out.push(paint('yellow', `Warning: ${w}`));
  return out.join('\n');
}
