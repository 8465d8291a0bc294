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
