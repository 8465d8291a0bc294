/** Misplaced references are type errors (checked by tsc: each @ts-expect-error must hit one); a Node target becomes a hosts entry. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Testing, TerraformStack } from 'cdktf';
import JSON5 from 'json5';
import { AclRule, Autogroup, Group, Node, Tag, Tailnet, User } from '../../provider/constructs/index.ts';
import { checkPolicy } from '../../src/policy/index.ts';

test('places are typed, and a failing pinned test is caught by checkPolicy', () => {
  const stack = new TerraformStack(Testing.app(), 's');
  const tailnet = new Tailnet(stack, 'tailnet');
  const ops = new Group(tailnet, 'ops', { members: [new User(tailnet, 'ngozi')] });
  const web = new Tag(tailnet, 'web', { owners: [ops] });
  const db = new Tag(tailnet, 'db', { owners: [ops] });
  const box = new Node(tailnet, 'box', { hostname: 'box', tags: [web] });
  ops.canReach(web.port(443), box.port(22));
  // Never called: only tsc looks at these.
  const typeErrors = () => {
    // @ts-expect-error autogroup:self is only a destination
    new AclRule(tailnet, 'bad-src', { src: [Autogroup.self], dst: [web] });
    // @ts-expect-error groups are not SSH destinations
    ops.canSsh(ops, { as: ['root'] });
    // @ts-expect-error a test destination needs exactly one port
    tailnet.test(ops).accepts(web.ports(80, 443));
    // @ts-expect-error autogroup:nonroot is only an SSH login
    ops.canReach(Autogroup.nonroot);
  };
  void typeErrors;
  tailnet.test(ops).accepts(web.port(443)).denies(db.port(5432));

  const policy = Object.values(JSON.parse(Testing.synth(stack)).resource.tailplane_policy as Record<string, { policy: string }>)[0]!.policy;
  // A Node's address is known only after apply: a Terraform expression inside the policy text.
  assert.match(JSON5.parse(policy).hosts['node-box'], /^\$\{element\(tailplane_node\.[^.]+\.ip_addresses, 0\)\}$/);
  assert.ok(JSON5.parse(policy).acls[0].dst.includes('node-box:22'));

  const offline = policy.replace(/"node-box": "[^"]*"/, '"node-box": "100.64.0.7"');
  assert.deepEqual(checkPolicy(offline, 'p.hujson').map(String), []);
  const broken = offline.replace('"deny": ["tag:db:5432"]', '"deny": ["tag:web:443"]');
  assert.notEqual(broken, policy);
  const errors = checkPolicy(broken, 'p.hujson').map(String);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /should deny tag:web:443/);
});
