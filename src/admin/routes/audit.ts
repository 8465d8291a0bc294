/**
 * /api/v1/audit: the audit log, filtered (since, actor, object) and paged by an id cursor; its chain check; and
 * pruning by age. Every role may read it (an auditor above all); only an admin may prune.
 */
import type { FastifyInstance } from 'fastify';
import { invalid } from '../../state/errors.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { str, strict } from '../schemas.ts';

const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `24h`, `30m`, `7d` before `now`, or an RFC 3339 time, as RFC 3339. */
export function parseSince(value: string, now: Date): string {
  const m = /^(\d{1,6})([smhd])$/.exec(value);
  if (m) return new Date(now.getTime() - Number(m[1]) * units[m[2]!]!).toISOString();
  const t = Date.parse(value);
  if (/^\d{4}-\d\d-\d\d/.test(value) && !Number.isNaN(t)) return new Date(t).toISOString();
  throw invalid(`invalid since "${value}": use a duration like 24h, 30m, 7d or an RFC 3339 time`);
}

type Query = { since?: string; actor?: string; object?: string; cursor?: string; limit?: string };

export function auditRoutes(app: FastifyInstance, t: Tailnet): void {
  app.get<{ Querystring: Query }>(
    '/api/v1/audit',
    {
      schema: {
        summary: 'Audit log entries in order, filtered; pass the answer\'s nextCursor as cursor for the next page',
        querystring: strict({ since: str, actor: str, object: str, cursor: { type: 'string', pattern: '^[0-9]{1,15}$' }, limit: { type: 'string', pattern: '^[0-9]{1,4}$' } }),
      },
    },
    async (req) => {
      const q = req.query;
      const page = t.audit.list({
        since: q.since === undefined ? undefined : parseSince(q.since, new Date()),
        actor: q.actor,
        object: q.object,
        after: q.cursor === undefined ? undefined : Number(q.cursor),
        limit: q.limit === undefined ? undefined : Math.max(1, Number(q.limit)),
      });
      return { entries: page.entries, nextCursor: page.next === null ? null : String(page.next) };
    },
  );
  app.get('/api/v1/audit/verify', { schema: { summary: 'Check the audit log\'s hash chain; names the first broken entry' } }, async () => t.audit.verify());
  app.post<{ Body: { olderThanDays: number } }>(
    '/api/v1/audit/prune',
    { schema: { summary: 'Delete entries older than N days, keeping the chain verifiable', body: strict({ olderThanDays: { type: 'number', minimum: 0 } }, ['olderThanDays']) } },
    async (req) => ({ pruned: t.audit.prune(new Date(Date.now() - req.body.olderThanDays * 86_400_000)) }),
  );
}
