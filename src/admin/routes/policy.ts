/**
 * /api/v1/policy and /api/v1/topology: the HuJSON policy (validated with its own tests before it is stored;
 * a refused policy changes nothing), its access diff against the live policy, and the tailnet as the policy sees it.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Topology } from '../../policy/index.ts';
import { topologyOf } from '../../state/policy-view.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { assertValidPolicy, policyAccessDiff, type PolicyChecker } from '../policy-checker.ts';
import { policyEtag, writePolicy } from '../policy-write.ts';
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
  /** The policy with its ETag, in the header (for If-Match) and in the body (for clients that read only JSON). */
  const withEtag = (reply: FastifyReply) => {
    const p = t.policy();
    const etag = policyEtag(t);
    reply.header('etag', etag);
    return { policy: p?.text ?? '', updatedAt: p?.updatedAt ?? null, etag };
  };

  app.get('/api/v1/policy', { schema: { summary: 'Get the policy (HuJSON text) and its ETag' } }, async (_req, reply) => withEtag(reply));

  app.put<{ Body: { policy: string }; Headers: { 'if-match'?: string } }>(
    '/api/v1/policy',
    {
      schema: {
        summary: 'Replace the policy; refused if invalid or its tests fail, 412 if If-Match names an older policy',
        body: policyBody,
      },
    },
    async (req, reply) => {
      writePolicy(t, policy, req.body.policy, req.headers['if-match']);
      return withEtag(reply);
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
