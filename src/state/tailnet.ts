/**
 * The tailnet service: one object that owns the in-memory state and every write to it (users, nodes, keys,
 * policy, DNS), backed by a store and publishing a change event after each commit.
 */
import type { DnsSettings, PolicyRecord } from '../domain/types.ts';
import type { Store } from '../store/store.ts';
import { createCore, type RemoteEntity } from './core.ts';
import { invalid } from './errors.ts';
import { createIpAllocator } from './ipam.ts';
import { createLeases } from './leases.ts';
import { createApiKeys, createPreAuthKeys } from './keys.ts';
import { createNodes } from './nodes.ts';
import { createOAuthClients } from './oauth.ts';
import { checkDns } from './dns.ts';
import { createSshChecks } from './ssh-checks.ts';
import { createTagOwners } from './tag-owners.ts';
import { createUsers } from './users.ts';
import { allowAllPolicy, topologyOf } from './policy-view.ts';
import { diffAccess, parsePolicy, renderAccessDiff, type Topology } from '../policy/index.ts';
import { createAuditLog } from '../audit/log.ts';
import { fieldChanges, type AuditNote } from '../audit/derive.ts';

export interface TailnetOptions {
  prefixes: { v4: string; v6: string; allocation: 'sequential' | 'random' };
  defaultDns: DnsSettings;
  expirySeconds: number;
  /** How long a Tailscale SSH check waits for a person before it fails; 10 minutes when not given. */
  sshCheckTimeoutMs?: number;
  /** Whether users' IdP groups (stored at their OIDC logins) are members of the policy's groups (`oidc.policy_groups`). */
  idpGroupsInPolicy?: boolean;
  now?: () => Date;
}

export function createTailnet(store: Store, opts: TailnetOptions) {
  const now = opts.now ?? (() => new Date());
  const core = createCore(store, opts.defaultDns);
  const users = createUsers(core, now);
  const ipam = createIpAllocator(opts.prefixes.v4, opts.prefixes.v6, opts.prefixes.allocation);
  const idpGroupsInPolicy = opts.idpGroupsInPolicy ?? false;
  const tagOwners = createTagOwners(() => core.ix.settings.policy, users, idpGroupsInPolicy);
  const nodes = createNodes(core, users, ipam, tagOwners, { expirySeconds: opts.expirySeconds }, now);
  const tailnet = {
    users,
    nodes,
    tagOwners,
    idpGroupsInPolicy,
    preAuthKeys: createPreAuthKeys(core, users, tagOwners, now),
    apiKeys: createApiKeys(core, now),
    sshChecks: createSshChecks(core, { timeoutMs: opts.sshCheckTimeoutMs ?? 600_000, now }),
    oauthClients: createOAuthClients(core, now),
    subscribe: core.subscribe,
    /** Takes in a record another replica committed (see Core.applyRemote). */
    applyRemote(entity: RemoteEntity, id: string, record: unknown | null): void {
      core.applyRemote(entity, id, record);
      // A decision made on another replica ends the long poll of a destination connected here.
      if (entity === 'ssh_check' && record) tailnet.sshChecks.remoteChanged(tailnet.sshChecks.get(id)!);
    },
    /** Runs several writes as one: all commit and are published together, or none (see Core.batch). */
    batch: core.batch,
    leases: createLeases(now),
    healthy: () => store.healthy(),
    policy: (): PolicyRecord | null => core.ix.settings.policy,
    /** Stores a policy text; the caller has validated it (the state layer does not parse policy). */
    setPolicy(text: string): PolicyRecord {
      const record = { text, updatedAt: now().toISOString() };
      const summary = policyChangeSummary(core.ix.settings.policy?.text ?? allowAllPolicy, text, topologyOf(tailnet));
      return core.write((tx) => {
        tx.putSetting('policy', record);
        return {
          result: record,
          apply: () => (core.ix.settings.policy = record),
          changes: [{ kind: 'policy-changed' }],
          audit: [{ action: 'policy.set', object: 'policy', summary }],
        };
      });
    },
    dns: (): DnsSettings => core.ix.settings.dns,
    /** Replaces the DNS settings; a caller that omits overrideLocalDns (it predates the field) keeps the current value. */
    setDns(input: Omit<DnsSettings, 'overrideLocalDns'> & { overrideLocalDns?: boolean }): DnsSettings {
      const dns: DnsSettings = { ...input, overrideLocalDns: input.overrideLocalDns ?? core.ix.settings.dns.overrideLocalDns };
      const problem = checkDns(dns);
      if (problem) throw invalid(problem);
      const frozen = Object.freeze(structuredClone(dns));
      return core.write((tx) => {
        tx.putSetting('dns', frozen);
        return {
          result: frozen,
          apply: () => (core.ix.settings.dns = frozen),
          changes: [{ kind: 'dns-changed' }],
          audit: [{ action: 'dns.set', object: 'dns', summary: fieldChanges(core.ix.settings.dns, frozen) }],
        };
      });
    },
    /** The audit log: read, verify, prune (entries are written by every write above, see Core.write). */
    audit: {
      ...createAuditLog(store),
      /** An entry about something no single write above says (what a batch as a whole carried out). */
      note: (note: AuditNote): void => core.write(() => ({ result: undefined, audit: [note] })),
    },
  };
  return tailnet;
}

/**
 * Tailnets up to this many nodes get the per-node access diff in the audit log. It is quadratic (300 allow-all
 * nodes: 5 s inside the policy write; 1,000: tens of seconds and gigabytes); larger ones get the diff in the
 * policy's own terms, and a review (`tailplane plan`, the console's access diff) still shows the per-node one.
 */
const auditPerNodeDiffMaxNodes = 100;

/** The access diff for the audit log (who gains and loses what), or why there is none. */
function policyChangeSummary(before: string, after: string, topology: Topology): string {
  try {
    const perNode = topology.nodes.length <= auditPerNodeDiffMaxNodes;
    const changes = diffAccess(parsePolicy(before, 'before'), parsePolicy(after, 'after'), topology, { perNode });
    const diff = perNode || changes.length ? renderAccessDiff(changes).trimEnd() : "no access changes in the policy's own terms";
    return perNode ? diff : `${diff}\n(per-node access diff left out: ${topology.nodes.length} nodes, over ${auditPerNodeDiffMaxNodes})`;
  } catch (err) {
    // A stored policy from before validation was this strict may not parse; the entry still says something.
    return `access diff unavailable: ${(err as Error).message.split('\n')[0]}`;
  }
}

export type Tailnet = ReturnType<typeof createTailnet>;
