// Access diff tests: gains and losses aggregated by source identity, destination and ports; text and JSON output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffAccess, parsePolicy, renderAccessDiff } from '../../src/policy/index.ts';
import { policyText, topology } from './fixture.ts';

const pol = (acls: string) => parsePolicy(policyText(`"acls": [${acls}]`), 'p');
const rule = (src: string, dst: string) => `{"action": "accept", "src": [${src}], "dst": [${dst}]}`;

const cases: [string, string, string, string][] = [
  ['no change', rule('"alice@"', '"tag:server:22"'), rule('"group:admins"', '"tag:server:22"'), 'no access changes\n'],
  ['port widened', rule('"alice@"', '"tag:server:22"'), rule('"alice@"', '"tag:server:22-25"'), '+ policy user alice -> tag:server any:23-25\n+ user alice [alice-laptop, alice-phone] -> web any:23-25\n'],
  ['source swapped', rule('"alice@"', '"tag:server:22"'), rule('"bob@"', '"tag:server:22"'),
    '- policy user alice -> tag:server any:22\n+ policy user bob -> tag:server any:22\n- user alice [alice-laptop, alice-phone] -> web any:22\n+ user bob [bob-laptop] -> web any:22\n'],
  ['tag source, subnet and internet', rule('"tag:ci"', '"db-subnet:5432"'), rule('"tag:ci"', '"autogroup:internet:443"'),
    '- policy tag:ci -> db-subnet any:5432\n+ policy tag:ci -> autogroup:internet any:443\n- tag:ci [ci] -> 10.20.0.0/16 any:5432\n+ tag:ci [ci] -> autogroup:internet any:443\n'],
  // Issue #21: `*` reaches the approved subnet routes too (router 5 routes 10.20.0.0/16).
  ['"*" destination gains the subnet route', rule('"bob@"', '"tag:server:22"'), rule('"bob@"', '"*:*"'),
    '+ policy user bob -> * any:*\n+ user bob [bob-laptop] -> 10.20.0.0/16 any:*\n+ user bob [bob-laptop] -> alice-laptop any:*\n+ user bob [bob-laptop] -> alice-phone any:*\n+ user bob [bob-laptop] -> ci any:*\n+ user bob [bob-laptop] -> router any:*\n+ user bob [bob-laptop] -> web any:0-21,23-65535\n'],
  ['autogroup:self added', rule('"alice@"', '"tag:server:22"'), `${rule('"alice@"', '"tag:server:22"')}, ${rule('"autogroup:member"', '"autogroup:self:22"')}`,
    '+ policy autogroup:member -> autogroup:self any:22\n+ user alice [alice-phone] -> alice-laptop any:22\n+ user alice [alice-laptop] -> alice-phone any:22\n'],
];

for (const [name, before, after, text] of cases) {
  test(`diff: ${name}`, () => assert.equal(renderAccessDiff(diffAccess(pol(before), pol(after), topology)), text));
}

test('diff JSON entries and protocol narrowing', () => {
  const before = pol(rule('"bob@"', '"tag:server:53"'));
  const after = parsePolicy(policyText(`"acls": [{"action": "accept", "proto": "udp", "src": ["bob@"], "dst": ["tag:server:53"]}]`), 'p');
  assert.deepEqual(diffAccess(before, after, topology), [
    { change: 'loss', src: { kind: 'policy', identity: 'user bob', nodes: [] }, dst: 'tag:server', ports: '53', proto: 'icmp,tcp,ipv6-icmp' },
    { change: 'loss', src: { kind: 'user', identity: 'bob', nodes: ['bob-laptop'] }, dst: 'web', ports: '53', proto: 'icmp,tcp,ipv6-icmp' },
  ]);
});

test('diff from the default allow-all to a policy shows the losses', () => {
  const changes = diffAccess(parsePolicy('{}', 'p'), pol(rule('"*"', '"*:*"')), topology);
  assert.deepEqual(changes, []);
  assert.ok(diffAccess(parsePolicy('{}', 'p'), pol(''), topology).every((c) => c.change === 'loss'));
});

test('diff in the policy\'s own terms: a rule for a tag with no node yet is not "no access changes"', () => {
  const text = (acls: string) => `{"groups": {"group:ops": ["bob@"]}, "tagOwners": {"tag:db": ["group:ops"]}, "acls": [${acls}]}`;
  const before = parsePolicy(text(rule('"group:ops"', '"tag:server:22"')).replace('"tag:server:22"', '"tag:db:22"'), 'p');
  const after = parsePolicy(text(`${rule('"group:ops"', '"tag:db:22"')}, ${rule('"group:ops"', '"tag:db:80"')}`), 'p');
  assert.equal(renderAccessDiff(diffAccess(before, after, topology)), '+ policy user bob -> tag:db any:80\n');
});

test('diff without the per-node part is the policy-terms part of the full diff, for every case', () => {
  for (const [name, before, after] of cases) {
    const full = diffAccess(pol(before), pol(after), topology).filter((c) => c.src.kind === 'policy');
    assert.deepEqual(diffAccess(pol(before), pol(after), topology, { perNode: false }), full, name);
  }
});
