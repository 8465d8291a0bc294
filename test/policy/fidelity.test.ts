// Tailscale fidelity (issue #14): small policies whose expected output is what Tailscale's control plane sends
// for the same policy and tailnet (values from the Tailscale captures in headscale's hscontrol/policy/v2/testdata).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPolicy, compilePolicy, parsePolicy } from '../../src/policy/index.ts';
import { policyText, topology } from './fixture.ts';

const compile = (sections: string) => compilePolicy(parsePolicy(policyText(sections), 'p'), topology, { serverUrl: 'https://hs.example' });
const ips = (...ids: number[]) => [...ids.map((id) => `100.64.0.${id}`), ...ids.map((id) => `fd7a:115c:a1e0::${id}`)];
const hosts = (id: number) => [`100.64.0.${id}/32`, `fd7a:115c:a1e0::${id}/128`];
const port = (ip: string, First: number, Last = First) => ({ IP: ip, Ports: { First, Last } });
const STAR = ['100.64.0.0-100.115.91.255', '100.115.94.0-100.127.255.255', 'fd7a:115c:a1e0::/48', '10.20.0.0/16'];

test('1. "*" as a source: the tailnet ranges plus every approved subnet route, never "*"', () => {
  assert.deepEqual(compile('"acls": [{"action": "accept", "src": ["*", "tag:ci"], "dst": ["tag:server:22"]}]').forNode(4).packetFilter, [
    { SrcIPs: [...STAR, ...ips(6)], DstPorts: [port('100.64.0.4', 22), port('fd7a:115c:a1e0::4', 22)] },
  ]);
  // autogroup:danger-all is the one source Tailscale sends as "*".
  assert.deepEqual(compile('"acls": [{"action": "accept", "src": ["autogroup:danger-all"], "dst": ["tag:server:22"]}]').forNode(4).packetFilter[0]!.SrcIPs, ['*']);
});

test('2. app grants: CapGrant Dsts are the node\'s own addresses; via carries no app capability', () => {
  const c = compile(`"grants": [
    {"src": ["bob@"], "dst": ["*"], "app": {"example.com/cap/web": [{}]}},
    {"src": ["bob@"], "dst": ["db-subnet"], "ip": ["tcp:5432"], "via": ["tag:router"], "app": {"example.com/cap/db": [{}]}}]`);
  assert.deepEqual(c.forNode(5).packetFilter, [
    { SrcIPs: ips(3), CapGrant: [{ Dsts: hosts(5), CapMap: { 'example.com/cap/web': [{}] } }] },
    { SrcIPs: ips(3), DstPorts: [port('10.20.0.0/16', 5432)], IPProto: [6] },
  ]);
});

test('3. drive and relay grants give drive-sharer / relay-target back to the sources', () => {
  const c = compile('"grants": [{"src": ["alice@"], "dst": ["tag:server"], "app": {"tailscale.com/cap/drive": [{"shares": ["*"]}], "tailscale.com/cap/relay": [{}]}}]');
  const app = { 'tailscale.com/cap/drive': [{ shares: ['*'] }], 'tailscale.com/cap/relay': [{}] };
  assert.deepEqual(c.forNode(4).packetFilter, [{ SrcIPs: ips(1, 2), CapGrant: [{ Dsts: hosts(4), CapMap: app }] }]);
  assert.deepEqual(c.forNode(1).packetFilter, [
    { SrcIPs: ips(4), CapGrant: [{ Dsts: hosts(1), CapMap: { 'tailscale.com/cap/drive-sharer': null } }] },
    { SrcIPs: ips(4), CapGrant: [{ Dsts: hosts(1), CapMap: { 'tailscale.com/cap/relay-target': null } }] },
  ]);
});

test('4. autogroup:internet is Tailscale\'s public space, written as ranges, on exit nodes only', () => {
  const c = compile('"acls": [{"action": "accept", "src": ["bob@"], "dst": ["autogroup:internet:*"]}]');
  const internet = ['0.0.0.0-9.255.255.255', '11.0.0.0-100.63.255.255', '100.128.0.0-169.253.255.255', '169.255.0.0-172.15.255.255',
    '172.32.0.0-192.167.255.255', '192.169.0.0-255.255.255.255', '2000::-3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'];
  assert.deepEqual(c.forNode(5).packetFilter, [{ SrcIPs: ips(3), DstPorts: internet.map((ip) => port(ip, 0, 65535)) }]);
  assert.deepEqual(c.forNode(4).packetFilter, []);
});

test('5. same sources merge where Tailscale merges them: grants first, then the first rule anywhere in the policy', () => {
  const c = compile(`"acls": [
    {"action": "accept", "src": ["tag:ci"], "dst": ["tag:router:22"]},
    {"action": "accept", "src": ["bob@"], "dst": ["tag:server:5432"]},
    {"action": "accept", "src": ["tag:ci"], "dst": ["tag:server:443"]}],
    "grants": [{"src": ["alice@"], "dst": ["tag:server"], "ip": ["tcp:80"]}]`);
  // tag:ci's rule merges into the first tag:ci rule (for the router), which comes before bob's.
  assert.deepEqual(c.forNode(4).packetFilter, [
    { SrcIPs: ips(1, 2), DstPorts: [port('100.64.0.4', 80), port('fd7a:115c:a1e0::4', 80)], IPProto: [6] },
    { SrcIPs: ips(6), DstPorts: [port('100.64.0.4', 443), port('fd7a:115c:a1e0::4', 443)] },
    { SrcIPs: ips(3), DstPorts: [port('100.64.0.4', 5432), port('fd7a:115c:a1e0::4', 5432)] },
  ]);
});

test('6. SSH: localpart rules also on the source users\' own nodes; check rules send only the URL', () => {
  const c = compile(`"ssh": [
    {"action": "check", "src": ["group:admins"], "dst": ["tag:server"], "users": ["root"], "checkPeriod": "30s"},
    {"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["localpart:*@example.com"]}]`);
  const accept = { accept: true, allowAgentForwarding: true, allowLocalPortForwarding: true, allowRemotePortForwarding: true };
  const p = (...ids: number[]) => ips(...ids).map((nodeIP) => ({ nodeIP }));
  assert.deepEqual(c.forNode(4).sshPolicy.rules[0]!.action, {
    holdAndDelegate: 'https://hs.example/machine/ssh/action/from/$SRC_NODE_ID/to/$DST_NODE_ID?ssh_user=$SSH_USER&local_user=$LOCAL_USER',
  });
  assert.deepEqual(c.forNode(3).sshPolicy.rules, [
    { principals: p(3), sshUsers: { root: '' }, action: accept },
    { principals: p(3), sshUsers: { bob: 'bob' }, action: accept },
  ]);
});

const refusals: [string, string][] = [
  ['"grants": [{"src": ["*"], "dst": ["autogroup:self"], "ip": ["*"]}]', '"*" cannot reach autogroup:self'],
  ['"grants": [{"src": ["tag:ci"], "dst": ["autogroup:self"], "ip": ["*"]}]', 'cannot reach autogroup:self'],
  ['"grants": [{"src": ["*"], "dst": ["0.0.0.0/0"], "ip": ["*"]}]', 'to allow all IP addresses, use "*" or "autogroup:internet"'],
  ['"grants": [{"src": ["*"], "dst": ["::/0"], "ip": ["*"]}]', 'to allow all IP addresses'],
  ['"grants": [{"src": ["*"], "dst": ["*"], "app": {"tailscale.com/cap/funnel": [{}]}}]', 'is reserved by Tailscale'],
  ['"grants": [{"src": ["*"], "dst": ["*"], "app": {"tailscale.com/cap/relay-target": [{}]}}]', 'is reserved by Tailscale'],
  ['"grants": [{"src": ["*"], "dst": ["*"]}]', 'grant needs a non-empty "ip" or "app"'],
  ['"grants": [{"src": ["*"], "dst": ["*"], "ip": [], "app": {}}]', 'grant needs a non-empty "ip" or "app"'],
  ['"grants": [{"src": ["*"], "dst": ["tag:server"], "ip": ["icmp"]}]', 'port range "icmp" is not a number'],
  ['"grants": [{"src": ["*"], "dst": ["tag:server"], "ip": ["tcp:0"]}]', 'the first port must be above 0'],
  ['"grants": [{"src": ["*"], "dst": ["autogroup:internet"], "app": {"example.com/cap/x": [{}]}}]', 'cannot be granted to autogroup:internet'],
  ['"ssh": [{"action": "accept", "src": ["user:*@example.org"], "dst": ["tag:server"], "users": ["root"]}]', 'example.org is not a domain of this tailnet'],
  ['"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["localpart:*@example.org"]}]', 'example.org is not a domain'],
  ['"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"], "acceptEnv": [""]}]', 'acceptEnv values cannot be empty'],
  ['"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}], "tests": [{"src": "alice@", "accept": ["10.20.0.0/16:22"]}]', 'is a CIDR'],
];

for (const [sections, message] of refusals) {
  test(`7. refused with its position: ${sections.slice(0, 90)}`, () => {
    const errors = checkPolicy(policyText(sections), 'p', topology).map((e) => e.message);
    assert.ok(errors.some((e) => /^p:\d+:\d+: /.test(e) && e.includes(message)), errors.join('\n') || 'accepted');
  });
}

const accepted = [
  '"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["svc account", "مستخدم", " root"]}]',
  '"ssh": [{"action": "check", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"], "checkPeriod": "30s"}]',
  '"ssh": [{"action": "check", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"], "checkPeriod": null, "acceptEnv": null}]',
  '"nodeAttrs": [{"target": ["autogroup:admin", "autogroup:owner"], "attr": ["funnel"]}, {"target": ["tag:ci"], "ipPool": ["100.80.0.0/16"]}]',
  '"acls": [{"action": "accept", "src": ["user:*@example.com"], "dst": ["tag:server:22"]}], "tests": [{"src": "alice@", "accept": ["tag:server:22"]}]',
  `"ssh": [{"action": "accept", "src": ["group:admins"], "dst": ["tag:server"], "users": ["root"]}],
   "sshTests": [{"src": "100.64.0.1", "dst": ["100.64.0.4"], "accept": ["root"]}, {"src": "alice@", "dst": ["printer"], "deny": ["root"]}]`,
];

for (const sections of accepted) {
  test(`8. accepted: ${sections.slice(0, 100)}`, () => assert.deepEqual(checkPolicy(policyText(sections), 'p', topology).map((e) => e.message), []));
}

test('8. user:*@domain matches every user of that domain', () => {
  const c = compile('"acls": [{"action": "accept", "src": ["user:*@example.com"], "dst": ["tag:server:22"]}]');
  assert.deepEqual(c.forNode(4).packetFilter[0]!.SrcIPs, ips(1, 2, 3));
});
