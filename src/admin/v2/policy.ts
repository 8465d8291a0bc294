/**
 * API v2 policy file: GET /tailnet/-/acl (HuJSON, or JSON when asked, with an ETag), POST /tailnet/-/acl
 * (If-Match guarded; the same checks as /api/v1/policy) and POST /tailnet/-/acl/validate (200 with an empty
 * body when valid, else 200 with `message` and `data`, as Tailscale answers).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import JSON5 from 'json5';
import type { Tailnet } from '../../state/tailnet.ts';
import type { PolicyChecker } from '../policy-checker.ts';
import { livePolicyText, policyEtag, writePolicy } from '../policy-write.ts';
import { httpError, tailnetParams as params } from './common.ts';

type PolicyRequest = FastifyRequest<{ Params: { tailnet: string }; Headers: { 'if-match'?: string } }>;

/** The policy text a request carries: the body as sent (HuJSON or JSON). */
function policyText(req: FastifyRequest): string {
  if (req.rawText === undefined || req.rawText.trim() === '') {
    throw httpError(400, 'send the policy as the request body (application/hujson or application/json)');
  }
  return req.rawText;
}

/** Sends the live policy in the format the client accepts (HuJSON unless it asks for JSON), with its ETag. */
function sendPolicy(t: Tailnet, req: FastifyRequest, reply: FastifyReply) {
  reply.header('etag', policyEtag(t));
  const text = livePolicyText(t);
  if (/application\/json/i.test(req.headers.accept ?? '')) {
    return reply.type('application/json').send(JSON.stringify(JSON5.parse(text), null, 2));
  }
  return reply.type('application/hujson').send(text);
}

/** A body of tests alone (Tailscale's "validate these tests against the live policy") as a full policy text. */
function withTests(live: string, tests: unknown[]): string {
  return JSON.stringify({ ...JSON5.parse(live), tests }, null, 2);
}

export function policyRoutes(app: FastifyInstance, t: Tailnet, checker: PolicyChecker): void {
  app.get(
    '/tailnet/:tailnet/acl',
    {
      schema: { summary: 'Get the policy file (HuJSON; JSON with Accept: application/json) and its ETag', params },
      config: { scope: 'policy_file:read' },
    },
    async (req, reply) => sendPolicy(t, req, reply)
  );

  app.post(
    '/tailnet/:tailnet/acl',
    { schema: { summary: 'Replace the policy file; 412 when If-Match names an older policy', params }, config: { scope: 'policy_file' } },
    async (req: PolicyRequest, reply) => {
      writePolicy(t, checker, policyText(req), req.headers['if-match']);
      return sendPolicy(t, req, reply);
    }
  );

  app.post(
    '/tailnet/:tailnet/acl/validate',
    { schema: { summary: 'Check a policy file (or tests against the live one)', params }, config: { scope: 'policy_file:read' } },
    async (req, reply) => {
      const text = Array.isArray(req.body) ? withTests(livePolicyText(t), req.body) : policyText(req);
      const errors = checker.check(text);
      if (errors.length === 0) return reply.code(200).send();
      return { message: 'policy refused', data: [{ user: '', errors }] };
    }
  );
}
