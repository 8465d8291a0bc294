/** `tailplane audit list|export|verify`: who changed what, as a table, JSON or JSON lines, and the chain check. */
import type { AuditEntry, VerifyResult } from '../../audit/chain.ts';
import { CliError } from '../args.ts';
import type { Context } from '../context.ts';
import { render, type Column } from '../output.ts';
import type { Command } from './command.ts';

const columns: Column<AuditEntry>[] = [
  { header: 'ID', value: (e) => String(e.id) },
  { header: 'Time', value: (e) => e.time },
  { header: 'Actor', value: (e) => e.actor },
  { header: 'Door', value: (e) => e.door },
  { header: 'Source', value: (e) => e.source },
  { header: 'Action', value: (e) => e.action },
  { header: 'Object', value: (e) => e.object },
  { header: 'Summary', value: (e) => e.summary.replace(/\n/g, ' | ') },
];

const filterFlags = {
  since: { type: 'string', description: 'only entries from this long ago (24h, 30m, 7d) or this RFC 3339 time on' },
  actor: { type: 'string', description: 'only entries by this actor, e.g. apikey:tpkey-api-ab12cd' },
  object: { type: 'string', description: 'only entries about this object, e.g. node:12, user:3, policy' },
} as const;

/** Every matching entry, page by page (the server pages by an id cursor). */
async function* entries(ctx: Context): AsyncGenerator<AuditEntry> {
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams();
    for (const name of ['since', 'actor', 'object']) {
      const v = ctx.args.flags[name];
      if (typeof v === 'string') q.set(name, v);
    }
    if (cursor) q.set('cursor', cursor);
    const page: { entries: AuditEntry[]; nextCursor: string | null } = await ctx.client().get(`/api/v1/audit?${q}`);
    yield* page.entries;
    cursor = page.nextCursor;
  } while (cursor);
}

export const auditCommands: Command[] = [
  {
    path: ['audit', 'list'],
    aliases: [['audit', 'ls']],
    summary: 'List audit log entries (who changed what, through which door)',
    flags: filterFlags,
    async run(ctx) {
      const all: AuditEntry[] = [];
      for await (const e of entries(ctx)) all.push(e);
      return render(ctx.format, all, all, columns);
    },
  },
  {
    path: ['audit', 'export'],
    summary: 'Print audit log entries as JSON lines (one entry per line, for a SIEM)',
    flags: filterFlags,
    async run(ctx) {
      for await (const e of entries(ctx)) process.stdout.write(JSON.stringify(e) + '\n');
    },
  },
  {
    path: ['audit', 'verify'],
    summary: 'Check the audit log hash chain; names the first entry that was changed or follows a deleted one',
    async run(ctx) {
      const r: VerifyResult = await ctx.client().get('/api/v1/audit/verify');
      if (!r.ok) throw new CliError(`audit log broken at entry ${r.brokenId}: ${r.reason}`);
      return `audit log intact: ${r.entries} entries${r.anchor.id ? ` after pruned entry ${r.anchor.id}` : ''}`;
    },
  },
];
