// Policy `tests` / `sshTests` runner and checkPolicy: failures quote the test and its position.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPolicy, compilePolicy, parsePolicy, runPolicyTests } from '../../src/policy/index.ts';
import { policyText, topology } from './fixture.ts';

const text = policyText(`
  "acls": [
    {"action": "accept", "src": ["group:admins"], "dst": ["tag:server:22,443"]},
    {"action": "accept", "proto": "udp", "src": ["bob@"], "dst": ["printer:161"]},
    {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]},
  ],
  "ssh": [{"action": "check", "src": ["group:admins"], "dst": ["tag:server"], "users": ["root"]}],
  "tests": [
    {"src": "alice@", "accept": ["tag:server:22", "tag:server:443"], "deny": ["tag:server:80"]},
    {"src": "group:devs", "accept": ["tag:server:22"]},
    {"src": "bob@", "proto": "udp", "accept": ["printer:161"], "deny": ["10.20.0.10:161"]},
    {"src": "alice@", "deny": ["alice@:22"]},
  ],
  "sshTests": [{"src": "alice@", "dst": ["tag:server"], "check": ["root"], "accept": ["ubuntu"], "deny": ["postgres"]}],
`);

for (const [name, topo] of [['with devices', topology], ['without devices (synthetic identities)', { users: [], nodes: [] }]] as const) {
  test(`tests and sshTests ${name}`, () => {
    const failures = runPolicyTests(compilePolicy(parsePolicy(text, 'policy.hujson'), topo)).map((e) => e.message);
    assert.deepEqual(failures, [
      'policy.hujson:14:38: test failed: group:devs should accept tag:server:22 but it is denied',
      'policy.hujson:16:32: test failed: alice@ should deny alice@:22 but it is accepted',
      'policy.hujson:18:87: sshTests failed: alice@ ssh to tag:server as "ubuntu" should be accept but is deny',
    ]);
  });
}

test('checkPolicy returns syntax, then semantic, then test errors', () => {
  assert.deepEqual(checkPolicy('{', 'f').map((e) => e.message), ['f:1:2: unterminated object']);
  assert.deepEqual(checkPolicy('{"acls": [{"action": "accept", "src": ["group:x"], "dst": ["*:*"]}]}', 'f').map((e) => e.line), [1]);
  assert.equal(checkPolicy(text, 'policy.hujson', topology).length, 3);
  assert.deepEqual(checkPolicy(policyText('"tests": [{"src": "alice@", "accept": ["tag:server:22"]}]'), 'f'), []);
});

test('IdP groups join policy groups of the same name: listed members plus IdP members; undeclared names stay errors', () => {
  // group:devs lists bob; alice's IdP says she is in "devs" (and "ops", which the policy never declares).
  const withIdp = { ...topology, users: topology.users.map((u) => (u.name === 'alice' ? { ...u, idpGroups: ['devs', 'ops'] } : u)) };
  const p = parsePolicy(text, 'policy.hujson');
  const members = (topo: typeof topology) => [...compilePolicy(p, topo).resolver.groupUsers('group:devs')].sort();
  assert.deepEqual(members(topology), ['bob']);
  assert.deepEqual(members(withIdp), ['alice', 'bob']);
  // The same policy tests pass or fail with the membership the topology carries.
  const devsTest = policyText(`"acls": [{"action": "accept", "src": ["group:devs"], "dst": ["tag:server:22"]}],
    "tests": [{"src": "alice@", "accept": ["tag:server:22"]}, {"src": "group:devs", "accept": ["tag:server:22"]}]`);
  assert.deepEqual(checkPolicy(devsTest, 'f', withIdp), []);
  assert.match(checkPolicy(devsTest, 'f', topology).map((e) => e.message).join('\n'), /alice@ should accept tag:server:22 but it is denied/);
  // An IdP group the policy does not declare grants nothing and cannot be named: a typo stays an error.
  assert.match(checkPolicy(policyText(`"acls": [{"action": "accept", "src": ["group:ops"], "dst": ["*:*"]}]`), 'f', withIdp)[0]!.message, /group "group:ops" is not defined in groups/);
});
