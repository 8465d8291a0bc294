// "What can X reach": rows read off the compiled per-node views — subnets and the internet through their router,
// allow-all, autogroup:self, protocols, SSH rules, and subjects (user, group, tag, machine) as their machines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, parsePolicy, reachOf, subjectNodes, type ReachRow, type ReachSubject } from '../../src/policy/index.ts';
import { policyText, topology } from './fixture.ts';

const compiled = (sections: string) => compilePolicy(parsePolicy(policyText(sections), 'p'), topology);
const lines = (rows: readonly ReachRow[]) => rows.map((r) => `${r.peer} ${r.what} ${r.how} [${r.nodes.join(',')}]`);
const reach = (sections: string, s: ReachSubject) => {
  const c = compiled(sections);
  return reachOf(c, subjectNodes(c, s));
};

test('reach: subnet, internet and node destinations; protocols; who reaches the destination', () => {
  const acls = `"acls": [
    {"action": "accept", "src": ["group:admins"], "dst": ["db-subnet:5432", "autogroup:internet:443", "tag:server:22,80-81"]},
    {"action": "accept", "proto": "udp", "src": ["bob@"], "dst": ["tag:server:53"]},
  ]`;
  const r = reach(acls, { kind: 'group', name: 'group:admins' });
  assert.deepEqual(lines(r.reaches), [
    '10.20.0.0/16 via router 5432 any [alice-laptop,alice-phone]',
    'the internet via router 443 any [alice-laptop,alice-phone]',
    'web 22,80-81 any [alice-laptop,alice-phone]',
  ]);
  assert.deepEqual(lines(r.reachedBy), []);
  const web = reach(acls, { kind: 'node', id: 4 });
  assert.deepEqual(lines(web.reachedBy), ['alice-laptop 22,80-81 any [web]', 'alice-phone 22,80-81 any [web]', 'bob-laptop 53 udp [web]']);
  assert.deepEqual(lines(web.reaches), []);
});

test('reach: a destination prefix around machines\' own addresses names the machines', () => {
  const r = reach(`"acls": [{"action": "accept", "src": ["bob@"], "dst": ["100.64.0.0/29:8080"]}]`, { kind: 'user', name: 'bob' });
  assert.deepEqual(lines(r.reaches), ['alice-laptop 8080 any [bob-laptop]', 'alice-phone 8080 any [bob-laptop]', 'ci 8080 any [bob-laptop]', 'router 8080 any [bob-laptop]', 'web 8080 any [bob-laptop]']);
  assert.deepEqual(lines(reach(`"acls": [{"action": "accept", "src": ["bob@"], "dst": ["100.64.0.0/29:8080"]}]`, { kind: 'node', id: 4 }).reachedBy), ['bob-laptop 8080 any [web]']);
});

test('reach: without access rules everyone reaches everything, the router\'s subnet and exit included', () => {
  const r = reach('"ssh": []', { kind: 'node', id: 6 });
  assert.deepEqual(lines(r.reaches), [
    '10.20.0.0/16 via router * any [ci]', 'alice-laptop * any [ci]', 'alice-phone * any [ci]', 'bob-laptop * any [ci]',
    'router * any [ci]', 'the internet via router * any [ci]', 'web * any [ci]',
  ]);
  // The subnet behind the router may reach ci too (allow-all sources include approved routes).
  assert.ok(lines(r.reachedBy).includes('10.20.0.0/16 * any [ci]'), lines(r.reachedBy).join('\n'));
});

test('reach: autogroup:self reaches the user\'s own other machines only; tags and users as subjects', () => {
  const acls = `"acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:22"]}]`;
  assert.deepEqual(lines(reach(acls, { kind: 'user', name: 'alice' }).reaches), ['alice-laptop 22 any [alice-phone]', 'alice-phone 22 any [alice-laptop]']);
  assert.deepEqual(lines(reach(acls, { kind: 'user', name: 'bob' }).reaches), []);
  assert.deepEqual(subjectNodes(compiled(acls), { kind: 'tag', name: 'tag:router' }), [5]);
  assert.deepEqual(subjectNodes(compiled(acls), { kind: 'user', name: 'nobody' }), []);
});

test('reach: SSH rules both ways, with their action and users', () => {
  const sections = `"ssh": [
    {"action": "check", "src": ["group:admins"], "dst": ["tag:server"], "users": ["deploy"]},
    {"action": "accept", "src": ["bob@"], "dst": ["tag:server"], "users": ["root"]},
  ]`;
  assert.deepEqual(lines(reach(sections, { kind: 'user', name: 'alice' }).sshTo), ['web deploy check [alice-laptop,alice-phone]']);
  assert.deepEqual(lines(reach(sections, { kind: 'node', id: 4 }).sshFrom), [
    'alice-laptop deploy check [web]', 'alice-phone deploy check [web]', 'bob-laptop root accept [web]',
  ]);
});
