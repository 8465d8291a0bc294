/**
 * API v2 DNS: nameservers, preferences (MagicDNS), search paths and split DNS (GET, PUT, PATCH), each a view
 * of the one DNS settings record, written through the same validation as /api/v1/dns.
 */
import type { FastifyInstance } from 'fastify';
import type { DnsSettings } from '../../domain/types.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { bool, strList, strict } from '../schemas.ts';
import { tailnetParams as params } from './common.ts';

type SplitDns = Record<string, readonly string[] | null>;
const splitDnsBody = { type: 'object', additionalProperties: { type: ['array', 'null'], items: { type: 'string' } } } as const;

/** Split DNS without the domains set to null or an empty list (Tailscale's "unset"). */
const withoutUnset = (m: SplitDns): Record<string, readonly string[]> =>
  Object.fromEntries(Object.entries(m).filter((e): e is [string, readonly string[]] => Array.isArray(e[1]) && e[1].length > 0));

export function dnsRoutes(app: FastifyInstance, t: Tailnet): void {
  const set = (patch: Partial<DnsSettings>) => t.setDns({ ...t.dns(), ...patch });
  const read = { schema: { params }, config: { scope: 'dns:read' as const } };
  const write = (body: object) => ({ schema: { params, body }, config: { scope: 'dns' as const } });

  app.get('/tailnet/:tailnet/dns/nameservers', read, async () => ({ dns: t.dns().nameservers }));
  app.post<{ Body: { dns: string[] } }>('/tailnet/:tailnet/dns/nameservers', write(strict({ dns: strList }, ['dns'])), async (req) => {
    const dns = set({ nameservers: req.body.dns });
    return { dns: dns.nameservers, magicDNS: dns.magicDns };
  });

  app.get('/tailnet/:tailnet/dns/preferences', read, async () => ({ magicDNS: t.dns().magicDns }));
  app.post<{ Body: { magicDNS: boolean } }>(
    '/tailnet/:tailnet/dns/preferences',
    write(strict({ magicDNS: bool }, ['magicDNS'])),
    async (req) => ({
      magicDNS: set({ magicDns: req.body.magicDNS }).magicDns,
    })
  );

  app.get('/tailnet/:tailnet/dns/searchpaths', read, async () => ({ searchPaths: t.dns().searchDomains }));
  app.post<{ Body: { searchPaths: string[] } }>(
    '/tailnet/:tailnet/dns/searchpaths',
    write(strict({ searchPaths: strList }, ['searchPaths'])),
    async (req) => ({
      searchPaths: set({ searchDomains: req.body.searchPaths }).searchDomains,
    })
  );

  app.get('/tailnet/:tailnet/dns/split-dns', read, async () => t.dns().splitDns);
  app.put<{ Body: SplitDns }>(
    '/tailnet/:tailnet/dns/split-dns',
    write(splitDnsBody),
    async (req) => set({ splitDns: withoutUnset(req.body ?? {}) }).splitDns
  );
  app.patch<{ Body: SplitDns }>(
    '/tailnet/:tailnet/dns/split-dns',
    write(splitDnsBody),
    async (req) => set({ splitDns: withoutUnset({ ...t.dns().splitDns, ...req.body }) }).splitDns
  );
}
