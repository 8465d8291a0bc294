/**
 * POST /api/v1/batch: several admin writes applied as one — in one store transaction, the policy checked
 * against the tailnet as the batch leaves it — so a refused or interrupted batch changes nothing.
 */
import type { FastifyInstance } from 'fastify';
import type { BatchOperation, BatchRequest, BatchResult } from '../../domain/batch.ts';
import { fromRevision } from '../../audit/context.ts';
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
    // A Git commit (SHA-1 or SHA-256 object names) or a desired-state file's content hash.
    revision: { type: 'string', pattern: '^(?:[0-9a-f]{40}|[0-9a-f]{64}|sha256:[0-9a-f]{64})$' },
  },
  ['operations'],
);

export function batchRoutes(app: FastifyInstance, t: Tailnet, policy: PolicyChecker): void {
  app.post<{ Body: BatchRequest }>(
    '/api/v1/batch',
    { schema: { summary: 'Apply several writes as one: all of them or none (the policy is checked against the result)', body: batchBody } },
    async (req): Promise<BatchResult> => {
      const { operations, ifMatch, lease, revision } = req.body;
      if (lease) t.leases.check(lease.name, lease.holder);
      assertIfMatch(t, ifMatch);
      const ref = revision === undefined ? undefined : revisionRef(revision);
      return fromRevision(ref, () => t.batch(() => applyAll(t, policy, operations, ref)));
    },
  );
}

/** The batch's operations, its policy check and its `revision.apply` entry; runs inside the batch's transaction. */
function applyAll(t: Tailnet, policy: PolicyChecker, operations: readonly BatchOperation[], ref: string | undefined): BatchResult {
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
  // Inside the batch's transaction: a refused batch leaves no entry saying it was applied.
  if (ref && operations.length > 0) t.audit.note({ action: 'revision.apply', object: ref, summary: batchSummary(operations) });
  return { results };
}

/** How audit entries name a revision: `git:<commit>`, or `file:sha256:<hex>` for a desired-state file. */
const revisionRef = (revision: string) => (revision.startsWith('sha256:') ? `file:${revision}` : `git:${revision}`);

/** `applied 4 operations: user.create ×2, dns.set, policy.set` (the entries before it say what each did). */
function batchSummary(operations: readonly BatchOperation[]): string {
  const counts = new Map<string, number>();
  for (const o of operations) counts.set(o.op, (counts.get(o.op) ?? 0) + 1);
  const parts = [...counts].map(([op, n]) => (n > 1 ? `${op} ×${n}` : op));
  return `applied ${operations.length} operation${operations.length === 1 ? '' : 's'}: ${parts.join(', ')}`;
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
