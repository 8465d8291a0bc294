// Benchmark (a script, not a test): policy compile and per-node reduction for 1,000 and 10,000 nodes, 100 rules,
// with and without autogroup:self. Run: node --import tsx test/bench/policy-compile.ts
import { performance } from 'node:perf_hooks';
import { compilePolicy, parsePolicy, type Topology } from '../../src/policy/index.ts';

const USERS_PER_GROUP = 10;

function topology(nodes: number): Topology {
  const users = Array.from({ length: Math.ceil(nodes / 4) }, (_, i) => ({ id: i + 1, name: `u${i}` }));
  return {
    users,
    nodes: Array.from({ length: nodes }, (_, i) => {
      const tagged = i % 5 === 0;
      const a = i + 1;
      return {
        id: a, name: `n${i}`, tags: tagged ? [`tag:t${i % 50}`] : [], user: tagged ? undefined : `u${i % users.length}`,
        ipv4: `100.${64 + (a >> 16)}.${(a >> 8) & 255}.${a & 255}`, ipv6: `fd7a:115c:a1e0::${a.toString(16)}`,
        approvedRoutes: i % 500 === 1 ? [`10.${(i / 500) | 0}.0.0/16`, '0.0.0.0/0', '::/0'] : [],
      };
    }),
  };
}

function policyText(users: number, self: boolean): string {
  const groups = Object.fromEntries(Array.from({ length: 20 }, (_, g) => [`group:g${g}`, Array.from({ length: USERS_PER_GROUP }, (_, k) => `u${(g * 37 + k * 13) % users}@`)]));
  const tagOwners = Object.fromEntries(Array.from({ length: 50 }, (_, t) => [`tag:t${t}`, ['group:g0']]));
  const acls = Array.from({ length: 100 }, (_, r) => {
    if (self && r < 5) return { action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:*'] };
    if (r % 10 === 9) return { action: 'accept', src: [`group:g${r % 20}`], dst: [`10.${r % 20}.0.0/16:443`, 'autogroup:internet:*'] };
    if (r % 4 === 0) return { action: 'accept', src: [`tag:t${r % 50}`], dst: [`tag:t${(r * 7) % 50}:5432`] };
    return { action: 'accept', src: [`group:g${r % 20}`, `u${r}@`], dst: [`tag:t${r % 50}:22,443,8000-8100`] };
  });
  return JSON.stringify({ groups, tagOwners, acls });
}

const ms = (t0: number) => (performance.now() - t0).toFixed(1);

for (const n of [1_000, 10_000]) {
  for (const self of [false, true]) {
    const topo = topology(n);
    const text = policyText(topo.users.length, self);
    let t0 = performance.now();
    const policy = parsePolicy(text, 'bench.hujson');
    const parseMs = ms(t0);
    t0 = performance.now();
    const c = compilePolicy(policy, topo);
    const compileMs = ms(t0);
    t0 = performance.now();
    let rules = 0;
    let peers = 0;
    for (const node of topo.nodes) {
      const v = c.forNode(node.id);
      rules += v.packetFilter.length;
      peers += v.peers.length;
    }
    const allMs = performance.now() - t0;
    console.log(
      `${String(n).padStart(6)} nodes, 100 rules, autogroup:self=${self ? 'yes' : 'no '}: parse ${parseMs} ms, compile ${compileMs} ms, ` +
        `all per-node views ${allMs.toFixed(0)} ms (${((allMs * 1000) / n).toFixed(0)} µs/node; avg ${(rules / n).toFixed(1)} filter rules, ${(peers / n).toFixed(0)} peers)`,
    );
  }
}
