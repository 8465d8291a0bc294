/**
 * POST /api/v1/batch: several admin writes applied as one — in one store transaction, the policy checked
 * against the tailnet as the batch leaves it — so a refused or interrupted batch changes nothing.
 */
import type { FastifyInstance } from 'fastify';
import type { BatchOperation, BatchRequest, BatchResult } from '../../domain/batch.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { invalid, notFound } from '../../state/errors.ts';
import type { PolicyChecker } from '../policy-checker.ts';
import { assertIfMatch } from '../policy-write.ts';
import { dnsSchema } from './settings.ts';
import { bool, idString, nullableTime, str, strList, strict } from '../schemas.ts';

const opSchema = (op: string, properties: Record<string, unknown>, required: string[]) =>
  strict({ op: { const: op }, ...properties }, ['op', ...required]);

const batchBody = strict(
  {
    operations: {
      type: 'array',
      maxItems: 10_000,
      items: {
        oneOf: [
          opSchema('user.create', { name: str, displayName: str, email: str }, ['name']),
          opSchema('user.update', { id: idString, displayName: str, email: str }, ['id']),
          opSchema('user.delete', { id: idString }, ['id']),
          opSchema('policy.set', { policy: str }, ['policy']),
          opSchema('dns.set', { dns: dnsSchema }, ['dns']),
          opSchema('node.tags', { id: idString, tags: strList }, ['id', 'tags']),
          opSchema('node.routes', { id: idString, routes: strList }, ['id', 'routes']),
          opSchema('node.rename', { id: idString, name: str }, ['id', 'name']),
          opSchema('node.expiry', { id: idString, expiry: nullableTime }, ['id', 'expiry']),
          opSchema('preauthkey.create', { user: str, tags: strList, reusable: bool, ephemeral: bool, expiration: nullableTime }, [
            'tags',
            'reusable',
            'ephemeral',
            'expiration',
          ]),
        ],
      },
    },
    ifMatch: str,
    lease: strict({ name: str, holder: str }, ['name', 'holder']),
  },
  ['operations'],
);

export function batchRoutes(app: FastifyInstance, t: Tailnet, policy: PolicyChecker): void {
  app.post<{ Body: BatchRequest }>(
    '/api/v1/batch',
    { schema: { summary: 'Apply several writes as one: all of them or none (the policy is checked against the result)', body: batchBody } },
    async (req): Promise<BatchResult> => {
      const { operations, ifMatch, lease } = req.body;
      if (lease) t.leases.check(lease.name, lease.holder);
      assertIfMatch(t, ifMatch);
      return t.batch(() => {
        const results = operations.map((op, i) => {
          try {
            return run(t, op);
          } catch (err) {
            (err as Error).message = `operation ${i} (${op.op}): ${(err as Error).message}`;
            throw err;
          }
        });
        // Checked last, so its tests see the users and node tags the same batch sets.
        const policies = operations.filter((o) => o.op === 'policy.set');
        const last = policies.at(-1);
        if (last) {
          const errors = policy.check(last.policy);
          if (errors.length > 0) throw invalid(`policy refused:\n${errors.join('\n')}`);
        }
        return { results };
      });
    },
  );
}

function run(t: Tailnet, o: BatchOperation): { id?: string; key?: string } {
  switch (o.op) {
    case 'user.create':
      t.users.create({ name: o.name, displayName: o.displayName, email: o.email });
      break;
    case 'user.update':
      t.users.update(Number(o.id), { displayName: o.displayName, email: o.email });
      break;
    case 'user.delete':
      t.users.remove(Number(o.id));
      break;
    case 'policy.set':
      t.setPolicy(o.policy);
      break;
    case 'dns.set':
      t.setDns(o.dns);
      break;
    case 'node.tags':
      t.nodes.setTags(Number(o.id), [...o.tags]);
      break;
    case 'node.routes':
      t.nodes.approveRoutes(Number(o.id), [...o.routes]);
      break;
    case 'node.rename':
      t.nodes.rename(Number(o.id), o.name);
      break;
    case 'node.expiry':
      t.nodes.setExpiry(Number(o.id), o.expiry);
      break;
    case 'preauthkey.create': {
      const user = o.user === undefined ? undefined : t.users.byName(o.user);
      if (o.user !== undefined && !user) throw notFound(`user "${o.user}" not found`);
      const { key, record } = t.preAuthKeys.create({
        userId: user?.id ?? null,
        tags: [...o.tags],
        reusable: o.reusable,
        ephemeral: o.ephemeral,
        expiration: o.expiration,
      });
      return { id: String(record.id), key };
    }
  }
  return {};
}
