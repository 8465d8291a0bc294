/** The policy document the constructs fill in, and its HuJSON text (comments name the construct each entry came from). */

/** One list entry with the comment written above it. */
export interface Entry {
  readonly comment?: string;
  readonly value: unknown;
}

/** Where a Node or named route is reachable: hosts entries are added by whoever first uses them. */
export interface HostLike {
  readonly alias: string;
  readonly hostValue: string;
}

export class PolicyDoc {
  readonly groups = new Map<string, string[]>();
  readonly tagOwners = new Map<string, string[]>();
  readonly hosts = new Map<string, string>();
  readonly acls: Entry[] = [];
  readonly grants: Entry[] = [];
  readonly ssh: Entry[] = [];
  readonly tests: Entry[] = [];
  readonly routeApprovers = new Map<string, string[]>();
  readonly exitNodeApprovers: string[] = [];

  /** Adds the hosts entry a reference needs, if it is host-like (a Node or a named route). */
  use(ref: object): string {
    const h = ref as Partial<HostLike>;
    if (typeof h.hostValue === 'string' && typeof h.alias === 'string') this.hosts.set(h.alias, h.hostValue);
    return (ref as { alias: string }).alias;
  }

  toHuJson(header: string): string {
    const out = [...header.split('\n').map((l) => `// ${l}`), '{'];
    const map = (key: string, m: Map<string, unknown>) => {
      if (m.size === 0) return;
      out.push(`  ${JSON.stringify(key)}: {`, ...[...m].map(([k, v]) => `    ${JSON.stringify(k)}: ${inline(v)},`), '  },');
    };
    const list = (key: string, entries: Entry[], always = false) => {
      if (entries.length === 0 && !always) return;
      out.push(`  ${JSON.stringify(key)}: [`);
      for (const e of entries) out.push(...(e.comment ? [`    // ${oneLine(e.comment)}`] : []), `    ${inline(e.value)},`);
      out.push('  ],');
    };
    map('groups', this.groups);
    map('tagOwners', this.tagOwners);
    map('hosts', this.hosts);
    // Always present: a tailnet whose constructs declare no rules denies everything, rather than allowing all.
    list('acls', this.acls, true);
    list('grants', this.grants);
    list('ssh', this.ssh);
    const approvers = { ...(this.routeApprovers.size ? { routes: Object.fromEntries(this.routeApprovers) } : {}), ...(this.exitNodeApprovers.length ? { exitNode: this.exitNodeApprovers } : {}) };
    if (Object.keys(approvers).length) out.push(`  "autoApprovers": ${inline(approvers)},`);
    list('tests', this.tests);
    out.push('}', '');
    return out.join('\n');
  }
}

/** Compact one-line JSON with a space after separators, for readable rule lines. */
function inline(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(inline).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => `${JSON.stringify(k)}: ${inline(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ');
