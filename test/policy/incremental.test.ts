/**
 * A compile that carries views over from the previous one must give every node exactly the view a fresh
 * compile gives: checked over random topology edits (joins, leaves, retags, owner changes, route changes)
 * for policies with groups, tags, autogroup:self, prefixes and subnet routes, via, grants, SSH and no ACLs, and one
 * of names only (rules narrowed by RuleIndex); with a fresh index per compile, and with a live one moved by the edits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { compilePolicy, liveTopology, parsePolicy, type CompiledPolicy, type SourceCache, type Topology, type TopologyCache, type TopologyNode } from '../../src/policy/index.ts';
import { filterForNode, selfSourcesCache } from '../../src/policy/rules.ts';
import { indexTopology } from '../../src/policy/topology.ts';
import { policyText } from './fixture.ts';

const users = [
  { id: 1, name: 'alice', email: 'alice@example.com' },
  { id: 2, name: 'bob', email: 'bob@example.com' },
  { id: 3, name: 'carol' },
];
const tagSets = [[], ['tag:server'], ['tag:router'], ['tag:ci'], ['tag:server', 'tag:ci']];
const routeSets = [[], ['10.20.0.0/16'], ['10.20.0.0/24', '0.0.0.0/0', '::/0'], ['192.168.1.0/24']];

const policies: Record<string, string> = {
  groups: policyText(`"acls": [
    {"action": "accept", "src": ["group:admins"], "dst": ["tag:server:22,443", "db-subnet:5432"]},
    {"action": "accept", "src": ["group:devs"], "dst": ["tag:ci:*", "printer:631"]},
    {"action": "accept", "src": ["tag:ci"], "dst": ["tag:server:443"]},
  ]`),
  self: policyText(`"acls": [
    {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]},
    {"action": "accept", "src": ["alice@"], "dst": ["bob@:22", "autogroup:internet:*"]},
  ]`),
  // Only names a node is held by (tags, users, groups, autogroup:self): changes are checked against the rules
  // that name them (RuleIndex), not every rule.
  identities: policyText(`"acls": [
    {"action": "accept", "src": ["group:admins"], "dst": ["tag:server:22", "carol@:80"]},
    {"action": "accept", "src": ["group:devs", "carol@"], "dst": ["group:devs:22", "autogroup:self:*"]},
    {"action": "accept", "src": ["tag:ci"], "dst": ["tag:ci:443", "bob@example.com:8080"]},
    {"action": "accept", "src": ["tag:router"], "dst": ["group:admins:53"]},
  ]`),
  wildcards: policyText(`"acls": [
    {"action": "accept", "src": ["*"], "dst": ["tag:server:443"]},
    {"action": "accept", "src": ["tag:ci"], "dst": ["*:80"]},
  ]`),
  viaAndGrants: policyText(`"grants": [
    {"src": ["group:devs"], "dst": ["10.20.0.0/24"], "ip": ["443"], "via": ["tag:router"]},
    {"src": ["autogroup:tagged"], "dst": ["autogroup:member"], "ip": ["*"], "app": {"example.com/cap/x": [{}]}},
  ]`),
  ssh: policyText(`
    "acls": [{"action": "accept", "src": ["group:admins"], "dst": ["tag:server:*"]}],
    "ssh": [
      {"action": "accept", "src": ["group:admins"], "dst": ["tag:server"], "users": ["root"]},
      {"action": "check", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot"]},
    ]`),
  noAcls: policyText(`"ssh": []`),
};

/** A small deterministic PRNG, so a failure names a reproducible seed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s % n;
  };
}

function makeNode(id: number, pick: (n: number) => number): TopologyNode {
  const tags = tagSets[pick(tagSets.length)]!;
  return {
    id, name: `n${id}`, user: tags.length ? undefined : users[pick(users.length)]!.name, tags,
    ipv4: `100.64.0.${id}`, ipv6: `fd7a:115c:a1e0::${id}`, approvedRoutes: routeSets[pick(routeSets.length)]!,
  };
}

/**
 * One random edit: a join, a leave, or a replaced node (new tags, owner or routes); unchanged nodes keep their
 * object. A join sometimes takes the id of the last node to leave, as SQLite hands out the highest id again.
 */
function edit(nodes: TopologyNode[], nextId: () => number, pick: (n: number) => number, freed: number[] = []): TopologyNode[] {
  const out = [...nodes];
  const op = pick(3);
  if (op === 0 || out.length < 3) out.push(makeNode(freed.length > 0 && pick(2) === 0 ? freed.pop()! : nextId(), pick));
  else if (op === 1) freed.push(out.splice(pick(out.length), 1)[0]!.id);
  else {
    const i = pick(out.length);
    out[i] = { ...makeNode(out[i]!.id, pick), ipv4: out[i]!.ipv4, ipv6: out[i]!.ipv6 };
  }
  return out;
}

const viewsOf = (c: CompiledPolicy, topo: Topology) => topo.nodes.map((n) => c.forNode(n.id));

for (const [name, text] of Object.entries(policies)) {
  test(`incremental views equal fresh views under random edits: ${name}`, () => {
    const policy = parsePolicy(text, 'p.hujson');
    for (let seed = 1; seed <= 15; seed++) {
      const pick = rng(seed);
      let id = 0;
      const nextId = () => ++id;
      let nodes = Array.from({ length: 12 }, () => makeNode(nextId(), pick));
      const cache: TopologyCache = new WeakMap();
      const sourceCache: SourceCache = new WeakMap();
      let prev: CompiledPolicy | undefined;
      let reused = 0;
      for (let step = 0; step < 25; step++) {
        // Edits come in bursts, as in a mapper batch.
        for (let k = 1 + pick(3); k > 0; k--) nodes = edit(nodes, nextId, pick);
        const topo: Topology = { users, nodes };
        const incremental = compilePolicy(policy, topo, { topologyCache: cache, sourceCache, previous: prev });
        const fresh = compilePolicy(policy, topo);
        const got = viewsOf(incremental, topo);
        assert.deepEqual(got, viewsOf(fresh, topo), `seed ${seed}, step ${step}`);
        if (prev) reused += got.filter((v) => prev!.cachedViews.get(v.nodeId) === v).length;
        prev = incremental;
      }
      if (name === 'groups' || name === 'ssh' || name === 'identities') assert.ok(reused > 0, `seed ${seed}: some views are carried over`);
    }
  });

  test(`a live index moved by the edits compiles to fresh views: ${name}`, () => {
    const policy = parsePolicy(text, 'p.hujson');
    for (let seed = 1; seed <= 15; seed++) {
      const pick = rng(seed);
      let id = 0;
      const nextId = () => ++id;
      const freed: number[] = [];
      let nodes = Array.from({ length: 12 }, () => makeNode(nextId(), pick));
      const cache: TopologyCache = new WeakMap();
      const live = liveTopology({ users, nodes }, cache);
      let prev = compilePolicy(policy, live.index, { topologyCache: cache });
      for (let step = 0; step < 25; step++) {
        const before = new Map(nodes.map((n) => [n.id, n]));
        for (let k = 1 + pick(3); k > 0; k--) nodes = edit(nodes, nextId, pick, freed);
        const now = new Set(nodes.map((n) => n.id));
        const changed = live.apply(nodes.filter((n) => before.get(n.id) !== n), [...before.keys()].filter((i) => !now.has(i)));
        const incremental = compilePolicy(policy, live.index, { topologyCache: cache, previous: prev, changed });
        const topo: Topology = { users, nodes: [...nodes].sort((a, b) => a.id - b.id) };
        const fresh = indexTopology(topo);
        assert.deepEqual([...live.index.byId.keys()].sort((a, b) => a - b), [...fresh.byId.keys()], `seed ${seed}, step ${step}: ids`);
        for (const key of ['nodes', 'byUser', 'byTag'] as const) assert.deepEqual(live.index[key], fresh[key], `seed ${seed}, step ${step}: ${key}`);
        assert.deepEqual(viewsOf(incremental, topo), viewsOf(compilePolicy(policy, topo), topo), `seed ${seed}, step ${step}`);
        prev = incremental;
      }
    }
  });
}

test('the rule index narrows which rules a node\'s filter looks at, never what the filter holds', () => {
  for (const name of ['identities', 'groups', 'self'] as const) {
    const policy = parsePolicy(policies[name]!, 'p.hujson');
    for (let seed = 1; seed <= 15; seed++) {
      const pick = rng(seed);
      const topo: Topology = { users, nodes: Array.from({ length: 16 }, (_, i) => makeNode(i + 1, pick)) };
      const compiled = compilePolicy(policy, topo);
      assert.ok(compiled.ruleIndex, name);
      // A copy of the rules is a plan of its own, built without the index.
      const rules = [...compiled.rules];
      const selfSources = selfSourcesCache(compiled.resolver);
      for (const n of compiled.topology.nodes) {
        assert.deepEqual(compiled.forNode(n.id).packetFilter, filterForNode(rules, n, selfSources, compiled.resolver), `${name}, seed ${seed}, node ${n.id}`);
      }
    }
  }
});

test('a changed policy, a new user or a changed IdP group recomputes every view', () => {
  const topo: Topology = { users, nodes: Array.from({ length: 6 }, (_, i) => makeNode(i + 1, rng(7))) };
  const topologyCache: TopologyCache = new WeakMap();
  const first = compilePolicy(parsePolicy(policies.groups!, 'p'), topo, { topologyCache });
  viewsOf(first, topo);
  const otherPolicy = compilePolicy(parsePolicy(policies.groups!, 'p'), topo, { topologyCache, previous: first });
  assert.ok(viewsOf(otherPolicy, topo).every((v) => first.cachedViews.get(v.nodeId) !== v));
  const samePolicy = compilePolicy(first.policy, { ...topo, users: [...users, { id: 9, name: 'dave' }] }, { topologyCache, previous: first });
  assert.ok(viewsOf(samePolicy, topo).every((v) => first.cachedViews.get(v.nodeId) !== v));
  const unchanged = compilePolicy(first.policy, topo, { topologyCache, previous: first });
  assert.ok(viewsOf(unchanged, topo).every((v) => first.cachedViews.get(v.nodeId) === v));
  // A user who gains or loses an IdP group changes group membership: nothing is carried over.
  const regrouped = users.map((u) => (u.name === 'carol' ? { ...u, idpGroups: ['admins'] } : u));
  const idpChange = compilePolicy(first.policy, { ...topo, users: regrouped }, { topologyCache, previous: unchanged });
  assert.equal(idpChange.affected, 'all');
});

test('a chain of incremental compiles keeps only the last one reachable', async () => {
  // Rules carried over outlive their compile: what they hold must not lead back to the compiles before.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const policy = parsePolicy(policies.identities!, 'p.hujson');
  const pick = rng(3);
  let id = 0;
  let nodes = Array.from({ length: 30 }, () => makeNode(++id, pick));
  const cache: TopologyCache = new WeakMap();
  const live = liveTopology({ users, nodes }, cache);
  let prev = compilePolicy(policy, live.index, { topologyCache: cache });
  const compiles: WeakRef<object>[] = [];
  for (let step = 0; step < 20; step++) {
    // One join at a time, as a fleet connects: most rules are carried over, each read by a view.
    const joiner = makeNode(++id, pick);
    nodes = [...nodes, joiner];
    const changed = live.apply([joiner], []);
    prev = compilePolicy(policy, live.index, { topologyCache: cache, previous: prev, changed });
    for (const n of nodes) prev.forNode(n.id).packetFilter;
    compiles.push(new WeakRef(prev.rules));
  }
  // Collect after the job that made the WeakRefs has ended (they keep their targets until then), and a few times
  // over some milliseconds: one collection at once left one earlier compile (a different one each time, never a
  // chain) behind in 4 of 10 whole-file runs, which later collections free; the leak this guards kept all 19.
  for (let round = 0; round < 5; round++) {
    await new Promise((r) => setTimeout(r, 10));
    gc();
  }
  const alive = compiles.slice(0, -1).filter((w) => w.deref() !== undefined).length;
  assert.equal(alive, 0, `${alive} of 19 earlier compiles' rules still reachable`);
  assert.ok(compiles.at(-1)!.deref());
});
