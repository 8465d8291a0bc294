/**
 * tailplane_node: adopts a node that registered itself (found by `hostname` or `name`) and manages its tags,
 * approved routes, MagicDNS name and key expiry. Destroy releases management and leaves the machine registered,
 * unless `remove_on_destroy` says the configuration also enrolled it.
 */
import type { CtyObject } from '../cty.ts';
import { DiagnosticError, errorDiag, type Diagnostic } from '../diagnostics.ts';
import type { ManagedResource } from '../resource.ts';
import type { Block } from '../schema.ts';
import { isNotFound, type ApiNode, type TailnetApi } from '../tailnet-api.ts';
import { bool, list, sorted, str, strList } from '../values.ts';


const schema: Block = {
  description:
    'A registered node taken under management. Arguments left null are not managed. Destroying the resource ' +
    'releases management: the node stays registered with its current settings, unless remove_on_destroy is set.',
  attributes: {
    id: { type: 'string', computed: true, description: 'The node id.' },
    hostname: { type: 'string', optional: true, forceNew: true, description: 'Adopt the node whose client hostname is this.' },
    name: { type: 'string', optional: true, forceNew: true, description: 'Adopt the node whose MagicDNS name is this (at adoption time).' },
    wait_for: { type: 'string', optional: true, description: 'How long create waits for the node to register, e.g. "90s" or "5m" (default: no wait).' },
    tags: { type: ['set', 'string'], optional: true, description: 'ACL tags (a tagged node is owned by its tags, not a user).' },
    approved_routes: { type: ['set', 'string'], optional: true, description: 'Approved subnet routes and exit routes.' },
    given_name: { type: 'string', optional: true, computed: true, description: 'The MagicDNS name.' },
    key_expiry_disabled: { type: 'bool', optional: true, description: 'Whether the node key never expires.' },
    remove_on_destroy: {
      type: 'bool',
      optional: true,
      description: 'Delete the node from the tailnet on destroy, for machines this configuration enrolled itself (default false).',
    },
    user: { type: 'string', computed: true, description: 'The owning user name ("" for a tagged node).' },
    ip_addresses: { type: ['list', 'string'], computed: true, description: 'The node addresses (IPv4, IPv6).' },
  },
};

/** Parses "90s", "5m", "1h" or a number of seconds into milliseconds. */
export function parseDuration(s: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) return null;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}

/** Live values for managed arguments; arguments the prior state leaves null stay unmanaged. */
function toState(n: ApiNode, prior: CtyObject | null): CtyObject {
  const managed = (k: string) => prior === null || prior[k] !== null;
  return {
    id: n.id,
    hostname: prior ? prior.hostname ?? null : n.name,
    name: prior ? prior.name ?? null : null,
    wait_for: prior ? prior.wait_for ?? null : null,
    remove_on_destroy: prior ? prior.remove_on_destroy ?? null : null,
    tags: managed('tags') ? list(sorted(n.tags)) : null,
    approved_routes: managed('approved_routes') ? list(sorted(n.approvedRoutes)) : null,
    given_name: n.givenName,
    key_expiry_disabled: managed('key_expiry_disabled') ? n.expiry === null : null,
    user: n.user?.name ?? '',
    ip_addresses: list(n.ipAddresses),
  };
}

async function adopt(api: TailnetApi, planned: CtyObject): Promise<ApiNode> {
  const hostname = str(planned, 'hostname');
  const name = str(planned, 'name');
  const waitMs = parseDuration(str(planned, 'wait_for') ?? '0') ?? 0;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const nodes = await api.listNodes();
    const found = nodes.filter((n) => (hostname !== null ? n.name === hostname : n.givenName === name));
    if (found.length > 1) throw new DiagnosticError('Ambiguous node', `${found.length} nodes match; adopt by \`name\` (MagicDNS name) instead`);
    if (found[0]) return found[0];
    if (Date.now() >= deadline) {
      throw new DiagnosticError('Node not found', `no registered node with ${hostname !== null ? `hostname "${hostname}"` : `name "${name}"`}${waitMs ? ` after waiting ${str(planned, 'wait_for')}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(2000, Math.max(100, deadline - Date.now()))));
  }
}

/** Applies each managed argument that differs from the node's live value. */
async function converge(api: TailnetApi, n: ApiNode, planned: CtyObject): Promise<ApiNode> {
  const same = (a: readonly string[], b: readonly string[]) => sorted(a).join('\n') === sorted(b).join('\n');
  const tags = strList(planned, 'tags');
  if (tags !== null && !same(tags, n.tags)) n = await api.setNodeTags(n.id, tags);
  const routes = strList(planned, 'approved_routes');
  if (routes !== null && !same(routes, n.approvedRoutes)) n = await api.approveNodeRoutes(n.id, routes);
  const givenName = str(planned, 'given_name');
  if (givenName !== null && givenName !== n.givenName) n = await api.renameNode(n.id, givenName);
  const noExpiry = bool(planned, 'key_expiry_disabled');
  if (noExpiry !== null && (n.expiry === null) !== noExpiry) n = await api.setNodeKeyExpiryDisabled(n.id, noExpiry);
  return n;
}

export function nodeResource(): ManagedResource {
  return {
    typeName: 'tailplane_node',
    schemaVersion: 0,
    schema,
    async validate(config) {
      const diags: Diagnostic[] = [];
      const h = config.hostname;
      const n = config.name;
      if (h === null && n === null) diags.push(errorDiag('Missing node selector', 'set `hostname` or `name` to say which node to adopt'));
      if (typeof h === 'string' && typeof n === 'string') diags.push(errorDiag('Conflicting node selectors', 'set only one of `hostname` and `name`', 'name'));
      const w = str(config, 'wait_for');
      if (w !== null && parseDuration(w) === null) diags.push(errorDiag('Invalid duration', `"${w}" is not a duration like "90s" or "5m"`, 'wait_for'));
      return diags;
    },
    async create(api, planned) {
      const n = await converge(api, await adopt(api, planned), planned);
      return { state: toState(n, planned) };
    },
    async read(api, state) {
      const n = (await api.listNodes()).find((x) => x.id === str(state, 'id'));
      return n ? toState(n, state) : null;
    },
    async update(api, prior, planned) {
      return toState(await converge(api, await api.getNode(str(prior, 'id')!), planned), planned);
    },
    // Releasing management leaves the machine, its tags and routes as they are, unless asked to remove it.
    async delete(api, prior) {
      if (bool(prior, 'remove_on_destroy') !== true) return;
      await api.deleteNode(str(prior, 'id')!).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
    },
    async import(api, id) {
      const nodes = await api.listNodes();
      const n = nodes.find((x) => x.id === id) ?? nodes.find((x) => x.givenName === id) ?? nodes.find((x) => x.name === id);
      if (!n) throw new DiagnosticError('Cannot import node', `no node with id, name or hostname "${id}"`);
      return toState(n, null);
    },
  };
}
