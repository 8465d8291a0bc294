/**
 * Output for people and scripts: aligned tables by default, `-o json` (stable, the API's shapes) or `-o yaml`.
 */
import YAML from 'yaml';
import { UsageError } from './args.ts';

export type Format = 'table' | 'json' | 'yaml';

export function parseFormat(value: string | boolean | undefined): Format {
  const f = value === undefined ? 'table' : String(value);
  if (f !== 'table' && f !== 'json' && f !== 'yaml') throw new UsageError(`unknown output format "${f}": use table, json or yaml`);
  return f;
}

export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => unknown;
}

/**
 * Control characters as visible escapes (ESC is `\x1b`): text from the server, a user's display name or a
 * node's hostname, must never drive the admin's terminal.
 */
const escapeControls = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (Array.isArray(v)) return v.length ? escapeControls(v.map((x) => (typeof x === 'object' && x !== null ? JSON.stringify(x) : String(x))).join(',')) : '-';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return escapeControls(String(v));
}

export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((r) => columns.map((c) => cell(c.value(r))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n');
}

/** Renders `data` as JSON/YAML, or as a table of `rows` with `columns`. */
export function render<T>(format: Format, data: unknown, rows: readonly T[], columns: readonly Column<T>[]): string {
  if (format === 'json') return JSON.stringify(data, null, 2);
  if (format === 'yaml') return YAML.stringify(data).trimEnd();
  return table(rows, columns);
}

/** Renders a single result object: JSON/YAML as is, or `key: value` lines. */
export function renderObject(format: Format, data: Record<string, unknown>): string {
  if (format !== 'table') return render(format, data, [], []);
  return Object.entries(data)
    .map(([k, v]) => `${k}: ${typeof v === 'object' && v !== null && !Array.isArray(v) ? JSON.stringify(v) : cell(v)}`)
    .join('\n');
}
