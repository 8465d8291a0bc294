/**
 * /api/v1/policy and /api/v1/topology: the HuJSON policy (validated with its own tests before it is stored;
 * a refused policy changes nothing), its access diff against the live policy, and the tailnet as the policy sees it.
 */
import type { FastifyInstance } from 'fastify';
import type { Topology } from '../../policy/index.ts';
import { topologyOf } from '../../state/policy-view.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { assertValidPolicy, policyAccessDiff, type PolicyChecker } from '../policy-checker.ts';
import { str, strict } from '../schemas.ts';

const policyBody = strict({ policy: str }, ['policy']);

/** The live topology in the policy's JSON shape; a tagged node's former owner is left out (tags XOR user). */
export function exportTopology(t: Tailnet): Topology {
  const topo = topologyOf(t);
  return {
    users: topo.users,
    nodes: topo.nodes.map((n) => ({
      id: n.id,
      name: n.name,
      ...(n.tags.length === 0 && n.user !== undefined ? { user: n.user } : {}),
      tags: n.tags,
      ipv4: n.ipv4,
      ipv6: n.ipv6,
      approvedRoutes: n.approvedRoutes,
    })),
  };
}

export function policyRoutes(app: FastifyInstance, t: Tailnet, policy: PolicyChecker): void {
  const checked = (text: string) => assertValidPolicy(policy, text);

  app.get('/api/v1/policy', { schema: { summary: 'Get the policy (HuJSON text)' } }, async () => {
    const p = t.policy();
    return { policy: p?.text ?? '', updatedAt: p?.updatedAt ?? null };
  });

  app.put<{ Body: { policy: string } }>(
    '/api/v1/policy',
    { schema: { summary: 'Replace the policy; refused if invalid or its tests fail', body: policyBody } },
    async (req) => {
      checked(req.body.policy);
      const p = t.setPolicy(req.body.policy);
      return { policy: p.text, updatedAt: p.updatedAt };
    },
  );

  app.post<{ Body: { policy: string } }>(
    '/api/v1/policy/check',
    { schema: { summary: 'Validate a policy against the live tailnet without storing it', body: policyBody } },
    async (req) => {
      checked(req.body.policy);
      return {};
    },
  );

  app.post<{ Body: { policy: string } }>(
    '/api/v1/policy/diff',
    { schema: { summary: 'Who gains and who loses which access if this policy replaced the live one', body: policyBody } },
    async (req) => policyAccessDiff(t, req.body.policy),
  );

  app.get('/api/v1/topology', { schema: { summary: 'The tailnet as the policy sees it (users; nodes with owner or tags, addresses, routes)' } }, async () =>
    exportTopology(t),
  );
}
