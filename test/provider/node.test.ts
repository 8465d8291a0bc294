/**
 * tailplane_node through the provider's RPC handlers against an in-process server: adoption waits for the
 * node to register, managed arguments converge, reads report drift, and destroy leaves the machine registered.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fromDynamic, isUnknown, toDynamic, type CtyObject } from '../../provider/src/cty.ts';
import { createLogger } from '../../provider/src/log.ts';
import { createProvider, providerSchema } from '../../provider/src/provider.ts';
import { allDataSources, allResources } from '../../provider/src/registry.ts';
import { nodeResource } from '../../provider/src/resources/node.ts';
import { objectType } from '../../provider/src/schema.ts';
import { defaultConfig } from '../../src/config/config.ts';
import { inProcessServer } from '../helpers/server.ts';

type Server = Awaited<ReturnType<typeof inProcessServer>>;
let server: Server;
const provider = createProvider({ resources: allResources(), dataSources: allDataSources(), log: createLogger('test', () => {}) });
const nodeType = objectType(nodeResource().schema);
const dv = (v: CtyObject | null) => toDynamic(v, nodeType);
const state = (d: unknown) => fromDynamic(d as { msgpack: Uint8Array }, nodeType) as CtyObject | null;

const hex = (n: number) => n.toString(16).padStart(64, '0');
function register(hostname: string, n: number) {
  const user = server.tailnet.users.list().find((u) => u.name === 'ops') ?? server.tailnet.users.create({ name: 'ops' });
  return server.tailnet.nodes.register({
    machineKey: `mkey:${hex(n)}`,
    nodeKey: `nodekey:${hex(n)}`,
    hostname,
    hostinfo: { Hostname: hostname, RoutableIPs: ['10.1.0.0/16'] },
    userId: user.id,
    tags: [],
    ephemeral: false,
    method: 'authkey',
  });
}

const config = (over: CtyObject): CtyObject => ({
  id: null, hostname: null, name: null, wait_for: null, tags: null, approved_routes: null,
  given_name: null, key_expiry_disabled: null, user: null, ip_addresses: null, ...over,
});

async function plan(prior: CtyObject | null, cfg: CtyObject) {
  // Core proposes the config, with prior values for computed attributes the config leaves null.
  const proposed = { ...cfg };
  for (const k of ['id', 'given_name', 'user', 'ip_addresses']) if (cfg[k] === null && prior) proposed[k] = prior[k]!;
  const res = await provider.call('PlanResourceChange', { type_name: 'tailplane_node', prior_state: dv(prior), proposed_new_state: dv(proposed), config: dv(cfg) });
  assert.deepEqual(res.diagnostics, []);
  return { planned: state(res.planned_state)!, requiresReplace: res.requires_replace as unknown[] };
}

async function apply(prior: CtyObject | null, planned: CtyObject | null, cfg: CtyObject | null) {
  return provider.call('ApplyResourceChange', { type_name: 'tailplane_node', prior_state: dv(prior), planned_state: dv(planned), config: dv(cfg) });
}

before(async () => {
  // The embedded DERP/STUN relay binds a fixed UDP port that parallel tests share; this test does not need it.
  server = await inProcessServer({ derp: { ...defaultConfig().derp, enabled: false } });
  // Tags are given only when the policy defines them.
  server.tailnet.setPolicy('{ "tagOwners": { "tag:web": [], "tag:db": [] } }');
  const providerConfig = toDynamic({ server_url: server.url, api_key: server.apiKey }, objectType(providerSchema));
  assert.deepEqual((await provider.call('ConfigureProvider', { config: providerConfig })).diagnostics ?? [], []);
});

after(async () => {
  await provider.close();
  await server?.close();
});

test('create waits for the node to register, then converges tags, routes, name and expiry', async () => {
  const cfg = config({ hostname: 'web-1', wait_for: '20s', tags: ['tag:web'], approved_routes: ['10.1.0.0/16'], given_name: 'web', key_expiry_disabled: true });
  const { planned } = await plan(null, cfg);
  assert.ok(isUnknown(planned.id));
  assert.equal(planned.given_name, 'web');
  const applying = apply(null, planned, cfg);
  setTimeout(() => register('web-1', 1), 300);
  const res = await applying;
  assert.deepEqual(res.diagnostics ?? [], []);
  const created = state(res.new_state)!;
  const live = server.tailnet.nodes.get(Number(created.id));
  assert.deepEqual(live.tags, ['tag:web']);
  assert.deepEqual(live.approvedRoutes, ['10.1.0.0/16']);
  assert.equal(live.givenName, 'web');
  assert.equal(live.expiry, null);
  assert.equal(created.hostname, 'web-1');
  assert.ok(Array.isArray(created.ip_addresses));

  // Read returns the live node; a change by hand shows up as drift.
  server.tailnet.nodes.setTags(live.id, ['tag:db']);
  const read = await provider.call('ReadResource', { type_name: 'tailplane_node', current_state: dv(created) });
  assert.deepEqual(state(read.new_state)!.tags, ['tag:db']);

  // Destroy releases management only: the machine stays registered as it is.
  const gone = await apply(created, null, null);
  assert.equal(state(gone.new_state), null);
  assert.deepEqual(server.tailnet.nodes.get(live.id).tags, ['tag:db']);
});

test('a node that never registers fails create with a clear message', async () => {
  const cfg = config({ hostname: 'nowhere', wait_for: '1s' });
  const res = await apply(null, (await plan(null, cfg)).planned, cfg);
  assert.equal(state(res.new_state), null);
  assert.match((res.diagnostics as { detail: string }[])[0]!.detail, /no registered node with hostname "nowhere" after waiting 1s/);
});

test('validation wants exactly one of hostname and name', async () => {
  const res = await provider.call('ValidateResourceConfig', { type_name: 'tailplane_node', config: dv(config({})) });
  assert.match((res.diagnostics as { summary: string }[])[0]!.summary, /Missing node selector/);
});

test('import finds a node by hostname and plans no change for a matching configuration', async () => {
  const n = register('db-1', 2);
  const res = await provider.call('ImportResourceState', { type_name: 'tailplane_node', id: 'db-1' });
  const imported = state((res.imported_resources as { state: unknown }[])[0]!.state)!;
  assert.equal(imported.id, String(n.id));
  const cfg = config({ hostname: 'db-1', tags: [], approved_routes: [], key_expiry_disabled: n.expiry === null });
  const { planned, requiresReplace } = await plan(imported, cfg);
  assert.deepEqual(requiresReplace, []);
  assert.deepEqual({ ...planned, wait_for: null }, imported);
});
