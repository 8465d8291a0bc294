/** Renders the policy part of a desired state as a Tailscale HuJSON policy file, and compares policies by meaning. */
import JSON5 from 'json5';
import { isPlain, policySections, type DesiredState } from './desired.ts';

const header = [
  '// Tailscale policy managed by tailplane: generated from the desired state by `tailplane apply`.',
  '// Edits made here are reported as drift and overwritten by the next apply; change the code instead.',
];

/** A bare user name is written "name@" in a policy (the form that matches a login name without a domain). */
export const userAlias = (m: string) => (m.includes('@') || m.includes(':') || m === '*' ? m : `${m}@`);

const sortedEntries = <T>(r: Readonly<Record<string, T>>) => Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
const mapValues = <T, U>(r: Readonly<Record<string, T>>, f: (v: T) => U) => Object.fromEntries(sortedEntries(r).map(([k, v]) => [k, f(v)]));

/** True when the desired state declares any policy section (otherwise the live policy is left alone). */
export function managesPolicy(d: DesiredState): boolean {
  return policySections.some((s) => d[s] !== undefined);
}

/** The policy as a plain object, sections in a fixed order; undefined when the state does not manage the policy. */
export function policyDocument(d: DesiredState): Record<string, unknown> | undefined {
  if (!managesPolicy(d)) return undefined;
  const doc: Record<string, unknown> = {};
  if (d.groups) doc.groups = mapValues(d.groups, (members) => members.map(userAlias));
  if (d.tags) doc.tagOwners = mapValues(d.tags, (owners) => owners.map(userAlias));
  if (d.hosts) doc.hosts = mapValues(d.hosts, (v) => v);
  if (d.autoApprovers) {
    const { routes, exitNode } = d.autoApprovers;
    doc.autoApprovers = {
      ...(routes ? { routes: mapValues(routes, (a) => a.map(userAlias)) } : {}),
      ...(exitNode ? { exitNode: exitNode.map(userAlias) } : {}),
    };
  }
  for (const s of ['acls', 'grants', 'ssh', 'nodeAttrs', 'tests', 'sshTests'] as const) if (d[s]) doc[s] = d[s];
  return doc;
}

/** The HuJSON text of the desired policy: deterministic, two-space indented, with a header comment. */
export function renderPolicy(d: DesiredState): string | undefined {
  const doc = policyDocument(d);
  return doc && `${header.join('\n')}\n${pretty(doc, '')}\n`;
}

const lineWidth = 100;

/** JSON with two-space indents, keeping any object or list that fits on one line (a rule, a member list) on one line. */
function pretty(v: unknown, indent: string): string {
  const flat = inline(v);
  if (flat.length + indent.length <= lineWidth || v === null || typeof v !== 'object') return flat;
  const inner = indent + '  ';
  const items = Array.isArray(v)
    ? v.map((x) => inner + pretty(x, inner))
    : Object.entries(v).map(([k, x]) => `${inner}${JSON.stringify(k)}: ${pretty(x, inner)}`);
  const [open, close] = Array.isArray(v) ? ['[', ']'] : ['{', '}'];
  return `${open}\n${items.join(',\n')}\n${indent}${close}`;
}

function inline(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(inline).join(', ')}]`;
  if (isPlain(v)) {
    const body = Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${inline(x)}`).join(', ');
    return body ? `{ ${body} }` : '{}';
  }
  return JSON.stringify(v);
}

/** Parses a policy text as HuJSON; undefined for an empty or unparsable text. */
export function parsePolicyText(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON5.parse(text);
  } catch {
    return undefined;
  }
}

/** Deep equality of JSON values; object key order does not matter, array order does. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  if (isPlain(a) && isPlain(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => sameJson(a[k], b[k]));
  }
  return false;
}
