/**
 * /api/v1/lease/:name (take, renew, release a named lease) and /api/v1/sync (the status the continuous-sync
 * leader last reported, and who leads): how sync processes elect one and share their state with the server.
 */
import type { FastifyInstance } from 'fastify';
import type { Tailnet } from '../../state/tailnet.ts';
import { str, strict } from '../schemas.ts';

const nameParams = strict({ name: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,62}$' } }, ['name']);

/** The lease the continuous-sync processes elect their leader with; only its holder reports the status. */
export const syncLeaderLease = 'sync';

export function leaseRoutes(app: FastifyInstance, t: Tailnet): void {
  let status: Record<string, unknown> | null = null;

  app.get<{ Params: { name: string } }>('/api/v1/lease/:name', { schema: { summary: 'Who holds a lease, until when', params: nameParams } }, async (req) => ({
    lease: t.leases.get(req.params.name) ?? null,
  }));

  app.post<{ Params: { name: string }; Body: { holder: string; ttlSeconds: number } }>(
    '/api/v1/lease/:name',
    {
      schema: {
        summary: 'Take or renew a lease (409 while another holder has it)',
        params: nameParams,
        body: strict({ holder: { type: 'string', minLength: 1, maxLength: 200 }, ttlSeconds: { type: 'integer' } }, ['holder', 'ttlSeconds']),
      },
    },
    async (req) => ({ lease: t.leases.acquire(req.params.name, req.body.holder, req.body.ttlSeconds) }),
  );

  app.delete<{ Params: { name: string }; Querystring: { holder: string } }>(
    '/api/v1/lease/:name',
    { schema: { summary: 'Release a lease this holder has', params: nameParams, querystring: strict({ holder: str }, ['holder']) } },
    async (req) => {
      t.leases.release(req.params.name, req.query.holder);
      return {};
    },
  );

  app.get('/api/v1/sync', { schema: { summary: 'Continuous sync: the last round the leader reported, and the leader' } }, async () => ({
    status,
    leader: t.leases.get(syncLeaderLease) ?? null,
  }));

  app.put<{ Body: { holder: string; status: Record<string, unknown> } }>(
    '/api/v1/sync',
    {
      schema: {
        summary: 'Report the continuous-sync status (only the holder of the sync lease may)',
        body: strict({ holder: str, status: { type: 'object' } }, ['holder', 'status']),
      },
    },
    async (req) => {
      t.leases.check(syncLeaderLease, req.body.holder);
      status = req.body.status;
      return {};
    },
  );
}
