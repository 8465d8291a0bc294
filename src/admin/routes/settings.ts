/**
 * /api/v1/policy and /api/v1/dns: the tailnet-wide settings. A policy is validated (syntax, references,
 * its own tests) before it is stored; a refused policy changes nothing.
 */
import type { FastifyInstance } from 'fastify';
import type { DnsSettings } from '../../domain/types.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { invalid } from '../../state/errors.ts';
import { bool, str, strList, strict } from '../schemas.ts';

/** Policy checks the admin API needs; implemented by the policy engine. */
export interface PolicyChecker {
  /** Every problem with the policy text (syntax with line:col, references, failing tests); empty when valid. */
  check(text: string): string[];
}

const dnsSchema = strict(
  {
    magicDns: bool,
    baseDomain: str,
    nameservers: strList,
    splitDns: { type: 'object', additionalProperties: strList },
    searchDomains: strList,
    extraRecords: {
      type: 'array',
      items: strict({ name: str, type: { type: 'string', enum: ['A', 'AAAA'] }, value: str }, ['name', 'type', 'value']),
    },
  },
  ['magicDns', 'baseDomain', 'nameservers', 'splitDns', 'searchDomains', 'extraRecords'],
);

export function settingsRoutes(app: FastifyInstance, t: Tailnet, policy: PolicyChecker): void {
  const checked = (text: string) => {
    const errors = policy.check(text);
    if (errors.length > 0) throw invalid(`policy refused:\n${errors.join('\n')}`);
  };

  app.get('/api/v1/policy', { schema: { summary: 'Get the policy (HuJSON text)' } }, async () => {
    const p = t.policy();
    return { policy: p?.text ?? '', updatedAt: p?.updatedAt ?? null };
  });

  app.put<{ Body: { policy: string } }>(
    '/api/v1/policy',
    { schema: { summary: 'Replace the policy; refused if invalid or its tests fail', body: strict({ policy: str }, ['policy']) } },
    async (req) => {
      checked(req.body.policy);
      const p = t.setPolicy(req.body.policy);
      return { policy: p.text, updatedAt: p.updatedAt };
    },
  );

  app.post<{ Body: { policy: string } }>(
    '/api/v1/policy/check',
    { schema: { summary: 'Validate a policy against the live tailnet without storing it', body: strict({ policy: str }, ['policy']) } },
    async (req) => {
      checked(req.body.policy);
      return {};
    },
  );

  app.get('/api/v1/dns', { schema: { summary: 'Get the DNS settings' } }, async () => ({ dns: t.dns() }));

  app.put<{ Body: DnsSettings }>(
    '/api/v1/dns',
    { schema: { summary: 'Replace the DNS settings (pushed to every client)', body: dnsSchema } },
    async (req) => ({ dns: t.setDns(req.body) }),
  );
}
