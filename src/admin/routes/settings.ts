/** /api/v1/dns: the tailnet-wide DNS settings, pushed to every client. */
import type { FastifyInstance } from 'fastify';
import type { Tailnet } from '../../state/tailnet.ts';
import { bool, str, strList, strict } from '../schemas.ts';

export const dnsSchema = strict(
  {
    magicDns: bool,
    baseDomain: str,
    nameservers: strList,
    overrideLocalDns: bool,
    splitDns: { type: 'object', additionalProperties: strList },
    searchDomains: strList,
    extraRecords: {
      type: 'array',
      items: strict({ name: str, type: { type: 'string', enum: ['A', 'AAAA'] }, value: str }, ['name', 'type', 'value']),
    },
  },
  ['magicDns', 'baseDomain', 'nameservers', 'splitDns', 'searchDomains', 'extraRecords'],
);

export function settingsRoutes(app: FastifyInstance, t: Tailnet): void {
  app.get('/api/v1/dns', { schema: { summary: 'Get the DNS settings' } }, async () => ({ dns: t.dns() }));

  app.put<{ Body: Parameters<Tailnet['setDns']>[0] }>(
    '/api/v1/dns',
    { schema: { summary: 'Replace the DNS settings (pushed to every client)', body: dnsSchema } },
    async (req) => ({ dns: t.setDns(req.body) }),
  );
}
