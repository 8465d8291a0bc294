/** Drift: how the live tailnet differs from the code, as JSON for machines and Markdown for a pull-request comment. */
import type { AttrDiff } from './attr-diff.ts';
import type { Plan } from './plan.ts';

export interface DriftItem {
  readonly address: string;
  /** changed: differs from the code; missing: declared but absent live; extra: live but pruned by the code. */
  readonly status: 'changed' | 'missing' | 'extra';
  /** before = live, after = code. */
  readonly diffs: readonly AttrDiff[];
}

export interface DriftReport {
  readonly drift: boolean;
  readonly generatedAt: string;
  readonly source?: string;
  readonly items: readonly DriftItem[];
  readonly unmanaged: Plan['unmanaged'];
  readonly waiting: readonly string[];
  readonly warnings: readonly string[];
  /** Why the code's policy cannot be applied (`file:line:col: detail` in the desired file); empty when it can. */
  readonly problems: readonly string[];
}

const statusOf = { update: 'changed', create: 'missing', delete: 'extra' } as const;

/** The plan that would undo the drift is the drift: each change names an object that differs from the code. */
export function driftReport(plan: Plan, opts: { source?: string; now?: Date } = {}): DriftReport {
  return {
    drift: plan.changes.length > 0,
    generatedAt: (opts.now ?? new Date()).toISOString(),
    ...(opts.source ? { source: opts.source } : {}),
    items: plan.changes.map((c) => ({ address: c.address, status: statusOf[c.action], diffs: c.diffs })),
    unmanaged: plan.unmanaged,
    waiting: plan.waiting,
    warnings: plan.warnings,
    problems: plan.changes.flatMap((c) => (c.kind === 'policy' ? c.problems : [])),
  };
}

const cellMax = 120;

/** A value in a table cell: compact JSON, pipes escaped, long values cut. */
function cell(v: unknown): string {
  if (v === undefined) return '_(absent)_';
  let text = JSON.stringify(v);
  if (text.length > cellMax) text = `${text.slice(0, cellMax - 1)}…`;
  return `\`${text.replace(/\|/g, '\\|').replace(/`/g, "'")}\``;
}

export function renderDriftMarkdown(r: DriftReport): string {
  const out = ['## tailplane drift report', ''];
  const from = r.source ? ` from \`${r.source}\`` : '';
  out.push(
    r.drift
      ? `**${r.items.length} object${r.items.length === 1 ? '' : 's'} changed outside code**${from} (checked ${r.generatedAt}).`
      : `No drift: the live tailnet matches the code${from} (checked ${r.generatedAt}).`,
    '',
  );
  if (r.items.length > 0) {
    out.push('### Changed outside code', '', '| Object | Status | Attribute | Live | Code |', '|---|---|---|---|---|');
    for (const item of r.items) {
      for (const d of item.diffs) out.push(`| \`${item.address}\` | ${item.status} | \`${d.path}\` | ${cell(d.before)} | ${cell(d.after)} |`);
    }
    out.push('');
  }
  const unmanaged = [
    ...r.unmanaged.users.map((u) => `- user \`${u}\`: not in the desired state`),
    ...r.unmanaged.nodes.map((n) => `- node \`${n}\`: not declared`),
    ...r.unmanaged.preAuthKeys.map((k) => `- pre-auth key ${k}: not declared`),
  ];
  if (unmanaged.length > 0) out.push('### Unmanaged live objects', '', ...unmanaged, '');
  if (r.waiting.length > 0) out.push('### Declared nodes not registered yet', '', ...r.waiting.map((n) => `- node \`${n}\``), '');
  if (r.warnings.length > 0) out.push('### Warnings', '', ...r.warnings.map((w) => `- ${w}`), '');
  if (r.problems.length > 0) out.push('### The code\'s policy is refused (apply would stop)', '', ...r.problems.map((p) => `- ${p}`), '');
  return out.join('\n');
}
