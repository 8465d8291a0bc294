/** `tailplane dns get|set`: the tailnet's DNS settings (MagicDNS, base domain, resolvers, split DNS, extra records). */
import type { DnsSettings } from '../../domain/types.ts';
import { UsageError } from '../args.ts';
import type { Context } from '../context.ts';
import { renderObject } from '../output.ts';
import type { Command } from './command.ts';

/** Items of a list flag: comma- or semicolon-separated. */
const items = (v: string) => v.split(/[;,]/).map((s) => s.trim()).filter(Boolean);

/** `corp.example=10.0.0.53,10.0.0.54;other.example=1.1.1.1` -> { domain: [resolvers] }. */
function parseSplitDns(v: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const entry of v.split(';').map((s) => s.trim()).filter(Boolean)) {
    const [domain, resolvers] = entry.split('=', 2);
    if (!domain || resolvers === undefined) throw new UsageError(`--split-dns "${entry}": expected domain=ip[,ip…]`);
    out[domain.trim()] = items(resolvers);
  }
  return out;
}

/** `db.tail.example=A:100.64.0.9;v6=AAAA:fd7a::1` -> extra records. */
function parseExtraRecords(v: string): DnsSettings['extraRecords'] {
  return v
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^([^=]+)=(A|AAAA):(.+)$/.exec(entry);
      if (!m) throw new UsageError(`--extra-record "${entry}": expected name=A:ip or name=AAAA:ip`);
      return { name: m[1]!.trim(), type: m[2] as 'A' | 'AAAA', value: m[3]!.trim() };
    });
}

/** The current settings with every given flag applied; flags not given keep their value. */
function applyFlags(ctx: Context, d: DnsSettings): DnsSettings {
  const next = { ...d };
  const bool = (name: string) => ctx.args.flags[name];
  if (typeof bool('magic-dns') === 'boolean') next.magicDns = bool('magic-dns') as boolean;
  if (typeof bool('override-local-dns') === 'boolean') next.overrideLocalDns = bool('override-local-dns') as boolean;
  const str = (name: string) => ctx.flag(name);
  if (str('base-domain') !== undefined) next.baseDomain = str('base-domain')!;
  if (str('nameservers') !== undefined) next.nameservers = items(str('nameservers')!);
  if (str('search-domains') !== undefined) next.searchDomains = items(str('search-domains')!);
  if (str('split-dns') !== undefined) next.splitDns = parseSplitDns(str('split-dns')!);
  if (str('extra-record') !== undefined) next.extraRecords = parseExtraRecords(str('extra-record')!);
  return next;
}

/** The table form writes split DNS and extra records the way the flags take them. */
const show = (ctx: Context, dns: DnsSettings) =>
  renderObject(
    ctx.format,
    ctx.format === 'table'
      ? {
          ...dns,
          splitDns: Object.entries(dns.splitDns).map(([domain, resolvers]) => `${domain}=${resolvers.join(',')}`).join(';'),
          extraRecords: dns.extraRecords.map((r) => `${r.name}=${r.type}:${r.value}`).join(';'),
        }
      : { dns },
  );

export const dnsCommands: Command[] = [
  {
    path: ['dns', 'get'],
    aliases: [['dns', 'show']],
    summary: 'Show the DNS settings pushed to clients',
    async run(ctx) {
      return show(ctx, (await ctx.client().get<{ dns: DnsSettings }>('/api/v1/dns')).dns);
    },
  },
  {
    path: ['dns', 'set'],
    summary: 'Change DNS settings (only the flags given); clients get them on their open streams',
    flags: {
      'magic-dns': { type: 'boolean', description: 'MagicDNS on (--magic-dns) or off (--magic-dns=false)' },
      'base-domain': { type: 'string', description: 'MagicDNS domain, e.g. tail.example' },
      nameservers: { type: 'string', description: 'global resolvers (IP, IP:port or https:// URL), comma-separated ("" for none)' },
      'override-local-dns': {
        type: 'boolean',
        description: 'use the nameservers for every name (--override-local-dns), or only as fallbacks beside the device\'s own DNS (=false)',
      },
      'search-domains': { type: 'string', description: 'search domains, comma-separated' },
      'split-dns': { type: 'string', repeatable: true, description: 'domain=ip[,ip…] (repeatable or ;-separated; replaces all)' },
      'extra-record': { type: 'string', repeatable: true, description: 'name=A:ip or name=AAAA:ip (repeatable; replaces all)' },
    },
    async run(ctx) {
      const client = ctx.client();
      const current = (await client.get<{ dns: DnsSettings }>('/api/v1/dns')).dns;
      const res = await client.put<{ dns: DnsSettings }>('/api/v1/dns', applyFlags(ctx, current));
      return show(ctx, res.dns);
    },
  },
];
