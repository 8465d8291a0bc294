/** /api/v1/ssh/checks: Tailscale SSH sessions held for a check, approvals still admitting sessions, and the approve/deny verbs. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiSshCheck } from '../../domain/api.ts';
import type { SshCheck } from '../../domain/types.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { strict } from '../schemas.ts';

const checkParams = strict({ id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } }, ['id']);

export function sshCheckJson(c: SshCheck): ApiSshCheck {
  return {
    id: c.id,
    state: c.state,
    srcNode: { id: String(c.srcNodeId), name: c.srcNode },
    srcUser: { id: String(c.srcUserId), name: c.srcUser },
    dstNode: { id: String(c.dstNodeId), name: c.dstNode },
    sshUser: c.sshUser,
    localUser: c.localUser,
    checkPeriodSeconds: Math.round(c.periodMs / 1000),
    createdAt: c.createdAt,
    deadline: c.deadline,
    decidedAt: c.decidedAt,
    decidedBy: c.decidedBy,
    validUntil: c.validUntil,
  };
}

export function sshRoutes(app: FastifyInstance, t: Tailnet): void {
  /** Who decided, for the record: the API key's public prefix (the request passed authentication already). */
  const actor = (req: FastifyRequest) => {
    const key = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const prefix = key ? t.apiKeys.authenticate(key)?.prefix : undefined;
    return prefix ? `api-key:${prefix}` : 'admin API';
  };

  app.get('/api/v1/ssh/checks', { schema: { summary: 'List pending SSH checks and approvals still within their check period' } }, async () => ({
    checks: t.sshChecks.list().map(sshCheckJson),
  }));

  app.post<{ Params: { id: string } }>(
    '/api/v1/ssh/checks/:id/approve',
    { schema: { summary: 'Approve a held SSH session; later sessions of that user to that node pass for the check period', params: checkParams } },
    async (req) => ({ check: sshCheckJson(t.sshChecks.approve(req.params.id, actor(req))) }),
  );

  app.post<{ Params: { id: string } }>(
    '/api/v1/ssh/checks/:id/deny',
    { schema: { summary: 'Deny a held SSH session', params: checkParams } },
    async (req) => ({ check: sshCheckJson(t.sshChecks.deny(req.params.id, actor(req))) }),
  );
}
