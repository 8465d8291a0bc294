/**
 * Times given to the server or the CLI: an RFC 3339 time with its zone, or a duration from now. Nothing else,
 * so "2099", "Dec 25 2099" or a time without a zone (read in whatever zone the server runs in) are refused.
 */

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
const duration = /^(\d{1,6})([smhdw])$/;
const unitSeconds = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 } as const;

export const timeHint = 'an RFC 3339 time with a zone (e.g. 2030-01-31T12:00:00Z) or a duration (e.g. 1h, 90d)';

/** The instant `text` names (a duration counts from `now`), or undefined when it is neither form. */
export function parseTimeOrDuration(text: string, now: Date): Date | undefined {
  const d = duration.exec(text);
  if (d) return new Date(now.getTime() + Number(d[1]) * unitSeconds[d[2] as keyof typeof unitSeconds] * 1000);
  const m = rfc3339.exec(text);
  if (!m) return undefined;
  const [month, day, hour, minute, second] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  // Date.parse rolls 2030-02-30 over to March; the calendar check refuses it instead.
  const daysInMonth = new Date(Date.UTC(Number(m[1]), month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 60) return undefined;
  const t = Date.parse(text.replace(' ', 'T'));
  return Number.isNaN(t) ? undefined : new Date(t);
}
