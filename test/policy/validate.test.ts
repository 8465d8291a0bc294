// Validation tests: undefined references and where each alias kind / autogroup may appear, with line:col.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, PolicyError } from '../../src/policy/index.ts';
import { policyText } from './fixture.ts';

/** [name, policy sections (one line each, placed after the header, on line 6), expected "line:col: message" prefix]. */
const invalid: [string, string, string][] = [
  ['undefined group', '"acls": [{"action": "accept", "src": ["group:nope"], "dst": ["*:*"]}]', '6:39: group "group:nope" is not defined in groups'],
  ['undefined tag', '"acls": [{"action": "accept", "src": ["*"], "dst": ["tag:nope:22"]}]', '6:53: tag "tag:nope" is not defined in tagOwners'],
  ['undefined host', '"acls": [{"action": "accept", "src": ["*"], "dst": ["nohost:22"]}]', '6:53: host "nohost" is not defined in hosts'],
  ['undefined ipset', '"acls": [{"action": "accept", "src": ["ipset:x"], "dst": ["*:*"]}]', '6:39: ipset "ipset:x" is not defined in ipsets'],
  ['undefined group in autoApprovers', '"ipsets": {}, "acls": [], "tests": [], "sshTests": [], "nodeAttrs": [], "ssh": [], "grants": [], "autoApprovers": {"exitNode": ["group:x"]}', '6:129: group "group:x" is not defined'],
  ['autogroup:self in src', '"acls": [{"action": "accept", "src": ["autogroup:self"], "dst": ["*:*"]}]', '6:39: autogroup:self can only be used in dst'],
  ['autogroup:internet in src', '"acls": [{"action": "accept", "src": ["autogroup:internet"], "dst": ["*:*"]}]', '6:39: autogroup:internet can only be used in dst'],
  ['autogroup:nonroot in dst', '"acls": [{"action": "accept", "src": ["*"], "dst": ["autogroup:nonroot:*"]}]', '6:53: autogroup:nonroot can only be used in ssh users'],
  ['autogroup:danger-all in dst', '"acls": [{"action": "accept", "src": ["*"], "dst": ["autogroup:danger-all:*"]}]', '6:53: autogroup:danger-all can only be used in src'],
  ['autogroup:admin in src', '"acls": [{"action": "accept", "src": ["autogroup:admin"], "dst": ["*:*"]}]', '6:39: autogroup:admin can only be used in tagOwners'],
  ['tag source to autogroup:self', '"acls": [{"action": "accept", "src": ["tag:ci"], "dst": ["autogroup:self:*"]}]', '6:39: "tag:ci" cannot reach autogroup:self'],
  ['autogroup:tagged source to autogroup:self', '"grants": [{"src": ["autogroup:tagged"], "dst": ["autogroup:self"], "ip": ["*"]}]', '6:21: "autogroup:tagged" cannot reach autogroup:self'],
  ['via with a non-tag', '"grants": [{"src": ["*"], "dst": ["db-subnet"], "ip": ["*"], "via": ["group:admins"]}]', '6:70: via only takes tags'],
  ['via to a node destination', '"grants": [{"src": ["*"], "dst": ["tag:ci"], "ip": ["*"], "via": ["tag:router"]}]', '6:12: a grant with via may only have'],
  ['ssh from tag to user device', '"ssh": [{"action": "accept", "src": ["tag:ci"], "dst": ["autogroup:self"], "users": ["root"]}]', '6:38: tags cannot SSH into user-owned devices'],
  ['ssh from autogroup:tagged to members', '"ssh": [{"action": "accept", "src": ["autogroup:tagged"], "dst": ["autogroup:member"], "users": ["root"]}]', '6:38: tags cannot SSH into user-owned devices'],
  ['ssh to another user', '"ssh": [{"action": "accept", "src": ["bob@"], "dst": ["alice@"], "users": ["root"]}]', "6:55: SSH into alice@'s devices is only allowed from alice@ itself"],
  ['ssh to * ', '"ssh": [{"action": "accept", "src": ["alice@"], "dst": ["*"], "users": ["root"]}]', '6:57: "*" is not allowed as an SSH destination'],
  ['ssh to host', '"ssh": [{"action": "accept", "src": ["alice@"], "dst": ["printer"], "users": ["root"]}]', '6:57: hosts and IP addresses are not allowed as SSH destinations'],
  ['ssh to group', '"ssh": [{"action": "accept", "src": ["alice@"], "dst": ["group:admins"], "users": ["root"]}]', '6:57: groups are not allowed as SSH destinations'],
  ['ssh from *', '"ssh": [{"action": "accept", "src": ["*"], "dst": ["tag:server"], "users": ["root"]}]', '6:38: "*" is not allowed in SSH src'],
  ['ssh from an IP', '"ssh": [{"action": "accept", "src": ["100.64.0.1"], "dst": ["tag:server"], "users": ["root"]}]', '6:38: "100.64.0.1" is not allowed in SSH src'],
  ['ssh bad user', '"ssh": [{"action": "accept", "src": ["alice@"], "dst": ["tag:server"], "users": ["autogroup:member"]}]', '6:82: "autogroup:member" is not a valid SSH user'],
  ['ssh bad localpart', '"ssh": [{"action": "accept", "src": ["alice@"], "dst": ["tag:server"], "users": ["localpart:alice"]}]', '6:82: invalid "localpart:alice"'],
  ['ssh no users', '"ssh": [{"action": "accept", "src": ["alice@"], "dst": ["tag:server"], "users": []}]', '6:9: SSH rule has no users'],
  ['autogroup:self in nodeAttrs', '"nodeAttrs": [{"target": ["autogroup:self"], "attr": ["x"]}]', '6:27: autogroup:self can only be used in dst'],
  ['autogroup:internet in autoApprovers', '"autoApprovers": {"exitNode": ["autogroup:internet"]}', '6:32: autogroup:internet can only be used in dst'],
  ['IP as approver', '"autoApprovers": {"routes": {"10.0.0.0/8": ["10.0.0.1"]}}', '6:45: "10.0.0.1" is not allowed in autoApprovers'],
  ['test src wildcard', '"tests": [{"src": "*", "accept": ["web:22"]}]', '6:19: "*" is not allowed in test src'],
  ['sshTests nonroot', '"sshTests": [{"src": "alice@", "dst": ["tag:server"], "accept": ["autogroup:nonroot"]}]', '6:66: sshTests name concrete users'],
];

for (const [name, section, expected] of invalid) {
  test(`invalid: ${name}`, () => {
    assert.throws(() => parsePolicy(policyText(`\n${section}\n`), 'policy.hujson'), (e: unknown) => {
      assert.ok(e instanceof PolicyError);
      assert.ok(e.message.startsWith(`policy.hujson:${expected}`), `got: ${e.message}`);
      return true;
    });
  });
}

test('group members must be users; groups may not contain groups', () => {
  assert.throws(() => parsePolicy('{"groups": {"group:a": ["alice@"], "group:b": ["group:a", "tag:x"]}}', 'p'), (e: unknown) => {
    assert.ok(e instanceof PolicyError);
    assert.deepEqual(e.errors.map((x) => x.detail), ['groups may not contain groups', '"tag:x" is not allowed in a group']);
    return true;
  });
});

test('tagOwners take users, groups, tags and autogroup:admin-like owners, but not IPs or hosts', () => {
  assert.doesNotThrow(() => parsePolicy('{"groups": {"group:a": []}, "tagOwners": {"tag:a": ["alice@", "group:a", "tag:b", "autogroup:admin", "autogroup:member"], "tag:b": []}}', 'p'));
  assert.throws(() => parsePolicy('{"tagOwners": {"tag:a": ["10.0.0.1"]}}', 'p'), /p:1:26: "10.0.0.1" is not allowed in tagOwners/);
});

const valid: [string, string][] = [
  ['every autogroup in its place', `"acls": [{"action": "accept", "src": ["autogroup:member", "autogroup:tagged", "autogroup:danger-all"], "dst": ["autogroup:member:*", "autogroup:tagged:22", "autogroup:internet:*"]},
    {"action": "accept", "src": ["group:admins", "alice@", "*"], "dst": ["autogroup:self:*"]}],
   "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot", "root"]},
    {"action": "accept", "src": ["alice@"], "dst": ["alice@"], "users": ["root"]},
    {"action": "accept", "src": ["tag:ci", "autogroup:tagged"], "dst": ["tag:server", "autogroup:tagged"], "users": ["deploy"]}]`],
  ['via grant to a subnet and the internet', '"grants": [{"src": ["group:devs"], "dst": ["db-subnet", "autogroup:internet"], "ip": ["tcp:5432"], "via": ["tag:router"]}]'],
  ['empty policy', ''],
];
for (const [name, section] of valid) {
  test(`valid: ${name}`, () => assert.doesNotThrow(() => parsePolicy(policyText(section), 'p')));
}
