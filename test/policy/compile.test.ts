// Compiler tests: per-node packet filters for every alias kind and autogroup, SSH policies, peers, capabilities.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, parsePolicy, type FilterRule } from '../../src/policy/index.ts';
import { policyText, topology } from './fixture.ts';

const compile = (sections: string, opts = {}) => compilePolicy(parsePolicy(policyText(sections), 'p'), topology, opts);
const ip4 = (id: number) => `100.64.0.${id}`;
const ip6 = (id: number) => `fd7a:115c:a1e0::${id}`;
const ips = (...ids: number[]) => [...ids.map(ip4), ...ids.map(ip6)];
const all = { First: 0, Last: 65535 };
const to = (id: number, First = 0, Last = 65535) => [{ IP: ip4(id), Ports: { First, Last } }, { IP: ip6(id), Ports: { First, Last } }];
/** What Tailscale sends for a `*` source: the tailnet's ranges plus every approved subnet route (router 5: 10.20.0.0/16). */
const STAR = ['100.64.0.0-100.115.91.255', '100.115.94.0-100.127.255.255', 'fd7a:115c:a1e0::/48', '10.20.0.0/16'];
const acl = (src: string, dst: string, proto = '') => `"acls": [{"action": "accept", ${proto ? `"proto": "${proto}", ` : ''}"src": [${src}], "dst": [${dst}]}]`;

/** [name, policy sections, node id, expected packet filter]. */
const filters: [string, string, number, FilterRule[]][] = [
  ['no acls/grants = allow all (as Tailscale sends it)', '', 4, [{ SrcIPs: STAR, DstPorts: [{ IP: '*', Ports: all }] }]],
  ['empty grants = deny all', '"grants": []', 4, []],
  ['user to tag, ports list', acl('"alice@"', '"tag:server:22,443"'), 4, [{ SrcIPs: ips(1, 2), DstPorts: [to(4, 22, 22)[0]!, to(4, 443, 443)[0]!, to(4, 22, 22)[1]!, to(4, 443, 443)[1]!] }]],
  ['rule for another node is not sent', acl('"alice@"', '"tag:server:22"'), 6, []],
  ['group by e-mail, port range, tcp', acl('"group:devs"', '"tag:ci:1000-2000"', 'tcp'), 6, [{ SrcIPs: ips(3), DstPorts: to(6, 1000, 2000), IPProto: [6] }]],
  ['wildcard both ways', acl('"*"', '"*:*"'), 3, [{ SrcIPs: STAR, DstPorts: [{ IP: '*', Ports: all }] }]],
  ['autogroup:member', acl('"autogroup:member"', '"tag:server:80"'), 4, [{ SrcIPs: ips(1, 2, 3), DstPorts: to(4, 80, 80) }]],
  ['autogroup:tagged', acl('"autogroup:tagged"', '"autogroup:member:22"'), 3, [{ SrcIPs: ips(4, 5, 6), DstPorts: to(3, 22, 22) }]],
  ['autogroup:danger-all', acl('"autogroup:danger-all"', '"tag:server:443"'), 4, [{ SrcIPs: ['*'], DstPorts: to(4, 443, 443) }]],
  ['autogroup:self for alice', acl('"autogroup:member"', '"autogroup:self:*"'), 2, [{ SrcIPs: ips(1, 2), DstPorts: to(2) }]],
  ['autogroup:self for bob', acl('"autogroup:member"', '"autogroup:self:*"'), 3, [{ SrcIPs: ips(3), DstPorts: to(3) }]],
  ['autogroup:self excludes tagged nodes', acl('"autogroup:member"', '"autogroup:self:*"'), 4, []],
  ['autogroup:self limited to sources', acl('"group:admins"', '"autogroup:self:22"'), 3, []],
  ['autogroup:internet on the exit node', acl('"bob@"', '"autogroup:internet:443"'), 5, [{ SrcIPs: ips(3), DstPorts: [] }]],
  ['autogroup:internet not on others', acl('"bob@"', '"autogroup:internet:*"'), 4, []],
  ['subnet route goes to its router', acl('"bob@"', '"db-subnet:5432"'), 5, [{ SrcIPs: ips(3), DstPorts: [{ IP: '10.20.0.0/16', Ports: { First: 5432, Last: 5432 } }] }]],
  ['host inside a route', acl('"bob@"', '"printer:631"'), 5, [{ SrcIPs: ips(3), DstPorts: [{ IP: '10.20.0.9', Ports: { First: 631, Last: 631 } }] }]],
  ['IP source and IPv6 destination', acl('"10.1.0.0/16", "100.64.0.3"', '"[fd7a:115c:a1e0::4]:22"'), 4, [{ SrcIPs: ['10.1.0.0/16', '100.64.0.3'], DstPorts: [{ IP: 'fd7a:115c:a1e0::4', Ports: { First: 22, Last: 22 } }] }]],
  ['icmp', acl('"*"', '"tag:server:*"', 'icmp'), 4, [{ SrcIPs: STAR, DstPorts: to(4), IPProto: [1] }]],
  ['grant ip list splits by protocol', '"grants": [{"src": ["bob@"], "dst": ["tag:server"], "ip": ["tcp:443", "udp:53", "icmp:*"]}]', 4,
    [{ SrcIPs: ips(3), DstPorts: to(4, 443, 443), IPProto: [6] }, { SrcIPs: ips(3), DstPorts: to(4, 53, 53), IPProto: [17] }, { SrcIPs: ips(3), DstPorts: to(4), IPProto: [1] }]],
  ['grant app capability', '"grants": [{"src": ["bob@"], "dst": ["tag:server"], "app": {"example.com/cap/web": [{"path": "/"}]}}]', 4,
    [{ SrcIPs: ips(3), CapGrant: [{ Dsts: [`${ip4(4)}/32`, `${ip6(4)}/128`], CapMap: { 'example.com/cap/web': [{ path: '/' }] } }] }]],
  ['via grant on the via router', '"grants": [{"src": ["bob@"], "dst": ["db-subnet"], "ip": ["tcp:5432"], "via": ["tag:router"]}]', 5,
    [{ SrcIPs: ips(3), DstPorts: [{ IP: '10.20.0.0/16', Ports: { First: 5432, Last: 5432 } }], IPProto: [6] }]],
  ['same sources merge', '"acls": [{"action": "accept", "src": ["bob@"], "dst": ["tag:server:22"]}, {"action": "accept", "src": ["bob@"], "dst": ["tag:server:80"]}]', 4,
    [{ SrcIPs: ips(3), DstPorts: [...to(4, 22, 22), ...to(4, 80, 80)] }]],
];

for (const [name, sections, id, expected] of filters) {
  test(`filter: ${name}`, () => {
    const got = compile(sections).forNode(id).packetFilter;
    if (name.startsWith('autogroup:internet on')) {
      const dsts = got[0]!.DstPorts!.map((d) => d.IP);
      assert.deepEqual(got[0]!.SrcIPs, expected[0]!.SrcIPs);
      assert.ok(dsts.includes('11.0.0.0-100.63.255.255') && dsts.includes('2000::-3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff') && !dsts.some((d) => d.startsWith('10.') || d.startsWith('100.64')));
      return;
    }
    assert.deepEqual(got, expected);
  });
}

test('filters never carry SrcBits/Bits or CIDRs with host bits', () => {
  const c = compile(acl('"*"', '"*:*", "autogroup:internet:*", "db-subnet:*"'));
  const json = JSON.stringify(topology.nodes.map((n) => c.forNode(n.id).packetFilter));
  assert.ok(!json.includes('Bits'));
});

test('ssh: check and accept actions, users map, principals, check rules first', () => {
  const c = compile(`"ssh": [
    {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot"]},
    {"action": "check", "src": ["group:admins"], "dst": ["tag:server"], "users": ["root", "deploy"], "checkPeriod": "1h"},
    {"action": "accept", "src": ["tag:ci"], "dst": ["tag:server"], "users": ["deploy"], "acceptEnv": ["GIT_*"]}]`, { serverUrl: 'https://hs.example' });
  const web = c.forNode(4).sshPolicy.rules;
  assert.equal(web.length, 2);
  assert.deepEqual(web[0], {
    principals: ips(1, 2).map((nodeIP) => ({ nodeIP })),
    sshUsers: { root: 'root', deploy: 'deploy' },
    action: {
      // Tailscale sends a check rule's URL alone: no forwarding flags, no sessionDuration.
      holdAndDelegate: 'https://hs.example/machine/ssh/action/from/$SRC_NODE_ID/to/$DST_NODE_ID?ssh_user=$SSH_USER&local_user=$LOCAL_USER',
    },
  });
  assert.deepEqual(web[1], {
    principals: ips(6).map((nodeIP) => ({ nodeIP })), sshUsers: { root: '', deploy: 'deploy' },
    action: { accept: true, allowAgentForwarding: true, allowLocalPortForwarding: true, allowRemotePortForwarding: true }, acceptEnv: ['GIT_*'],
  });
  assert.deepEqual(c.forNode(2).sshPolicy.rules.map((r) => [r.principals, r.sshUsers]), [[ips(1, 2).map((nodeIP) => ({ nodeIP })), { '*': '=', root: '' }]]);
  assert.deepEqual(c.forNode(3).sshPolicy.rules[0]!.principals, ips(3).map((nodeIP) => ({ nodeIP })));
  assert.deepEqual(c.forNode(5).sshPolicy.rules, []);
  assert.equal(c.sshDecision({ user: 'alice', tags: [], ips: [] }, { user: undefined, tags: ['tag:server'], ips: [] }, 'root'), 'check');
  assert.equal(c.sshDecision({ user: 'bob', tags: [], ips: [] }, { user: 'alice', tags: [], ips: [] }, 'bob'), 'deny');
  assert.equal(c.sshDecision({ user: 'alice', tags: [], ips: [] }, { user: 'alice', tags: [], ips: [] }, 'root'), 'deny');
});

test('ssh: localpart maps each user to the local part of their e-mail', () => {
  const c = compile('"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["localpart:*@example.com"]}]');
  const rules = c.forNode(4).sshPolicy.rules;
  // Split per source user as Tailscale does: each user's rule, then the rule mapping that user's local part.
  assert.deepEqual(rules.map((r) => r.sshUsers), [{ root: '' }, { alice: 'alice' }, { root: '' }, { bob: 'bob' }]);
  assert.deepEqual(rules.map((r) => r.principals), [ips(1, 2), ips(1, 2), ips(3), ips(3)].map((l) => l.map((nodeIP) => ({ nodeIP }))));
  assert.equal(c.sshDecision({ user: 'bob', tags: [], ips: [] }, { user: undefined, tags: ['tag:server'], ips: [] }, 'bob'), 'accept');
  assert.equal(c.sshDecision({ user: 'bob', tags: [], ips: [] }, { user: undefined, tags: ['tag:server'], ips: [] }, 'alice'), 'deny');
});

test('peers: a node sees exactly who it reaches and who reaches it', () => {
  const c = compile(`"acls": [
    {"action": "accept", "src": ["group:admins"], "dst": ["tag:server:22"]},
    {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]},
    {"action": "accept", "src": ["bob@"], "dst": ["db-subnet:5432"]}]`);
  const peers = Object.fromEntries(topology.nodes.map((n) => [n.name, c.forNode(n.id).peers]));
  assert.deepEqual(peers, { 'alice-laptop': [2, 4], 'alice-phone': [1, 4], 'bob-laptop': [5], web: [1, 2], router: [3], ci: [] });
  assert.deepEqual(compile('').forNode(6).peers, [1, 2, 3, 4, 5]);
  assert.deepEqual(compile(acl('"*"', '"tag:server:22"')).forNode(6).peers, [4]);
  assert.deepEqual(compile(acl('"*"', '"tag:server:22"')).forNode(4).peers, [1, 2, 3, 5, 6]);
  assert.deepEqual(compile(acl('"bob@"', '"autogroup:internet:*"')).forNode(3).peers, [5]);
});

test('capabilities from nodeAttrs and top-level switches', () => {
  const c = compile(`"nodeAttrs": [{"target": ["autogroup:member"], "attr": ["magicdns-aaaa"]}, {"target": ["tag:server", "*"], "attr": ["drive:share", "magicdns-aaaa"]}],
    "randomizeClientPort": true`);
  assert.deepEqual(c.forNode(1).capabilities, ['magicdns-aaaa', 'drive:share', 'randomize-client-port']);
  assert.deepEqual(c.forNode(4).capMap, { 'drive:share': [], 'magicdns-aaaa': [], 'randomize-client-port': [] });
});

test('autoApprovers approve routes inside a listed prefix and exit routes', () => {
  const c = compile('"autoApprovers": {"routes": {"10.0.0.0/8": ["tag:router"]}, "exitNode": ["group:admins"]}');
  assert.deepEqual(c.autoApprovedRoutes(5, ['10.20.0.0/16', '192.168.0.0/24', '0.0.0.0/0']), ['10.20.0.0/16']);
  assert.deepEqual(c.autoApprovedRoutes(1, ['10.20.0.0/16', '0.0.0.0/0', '::/0']), ['0.0.0.0/0', '::/0']);
});

test('per-node views are cached', () => {
  const c = compile(acl('"*"', '"*:*"'));
  assert.equal(c.forNode(1), c.forNode(1));
  assert.throws(() => c.forNode(99), /unknown node id 99/);
});
