/**
 * Tags are checked against the policy's tagOwners in the state layer, so every door refuses the same way: a tag
 * must be defined; a user's pre-auth key carries only tags that user owns; an admin may give any defined tag.
 * State calls on an in-process server (real SQLite file), then the admin API and the CLI as a user meets them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defaultConfig } from '../../src/config/config.ts';
import { StateError } from '../../src/state/errors.ts';
import { api, cliAsync, inProcessServer } from '../helpers/server.ts';

let server: Awaited<ReturnType<typeof inProcessServer>>;
const hex = (n: number) => n.toString(16).padStart(64, '0');

before(async () => {
  server = await inProcessServer({ derp: { ...defaultConfig().derp, enabled: false } });
});
after(() => server.close());

const policy = `{
  "groups": { "group:ops": ["bob@example.com"] },
  "tagOwners": {
    "tag:ci": ["alice@example.com"],
    "tag:db": ["group:ops"],
  },
}`;

const refused = (fn: () => unknown, message: RegExp) =>
  assert.throws(fn, (err: Error) => err instanceof StateError && message.test(err.message), String(message));

test('state: undefined tags are refused, a user key carries only owned tags, an admin any defined tag', () => {
  const t = server.tailnet;
  const alice = t.users.create({ name: 'alice', email: 'alice@example.com' });
  const bob = t.users.create({ name: 'bob', email: 'bob@example.com' });
  refused(() => t.preAuthKeys.create({ tags: ['tag:ci'] }), /tag "tag:ci" is not defined: no policy is set/);

  t.setPolicy(policy);
  const before = t.preAuthKeys.list().length;
  refused(() => t.preAuthKeys.create({ tags: ['tag:undefined'] }), /tag "tag:undefined" is not defined in the policy's tagOwners \(defined: tag:ci, tag:db\)/);
  refused(
    () => t.preAuthKeys.create({ userId: alice.id, tags: ['tag:db'] }),
    /user "alice" does not own tag "tag:db": its tagOwners rule at policy\.hujson:5:5 allows group:ops/,
  );
  assert.equal(t.preAuthKeys.list().length, before, 'nothing half-written');
  assert.deepEqual(t.preAuthKeys.create({ tags: ['tag:db', 'tag:ci'] }).record.tags, ['tag:db', 'tag:ci'], 'admin: any defined tag');
  assert.deepEqual(t.preAuthKeys.create({ userId: alice.id, tags: ['tag:ci'] }).record.tags, ['tag:ci'], 'alice owns tag:ci');
  assert.deepEqual(t.preAuthKeys.create({ userId: bob.id, tags: ['tag:db'] }).record.tags, ['tag:db'], 'bob owns tag:db through group:ops');

  const node = t.nodes.register({
    machineKey: `mkey:${hex(1)}`, nodeKey: `nodekey:${hex(1)}`, hostname: 'box', hostinfo: {}, userId: alice.id, tags: [], ephemeral: false, method: 'authkey',
  });
  refused(() => t.nodes.setTags(node.id, ['tag:nope']), /tag "tag:nope" is not defined in the policy's tagOwners/);
  assert.equal(t.nodes.get(node.id).userId, alice.id, 'the refused tag changed nothing');
  assert.deepEqual(t.nodes.setTags(node.id, ['tag:db']).tags, ['tag:db'], 'admin: any defined tag, even one alice does not own');
  assert.equal(t.tagOwners.refusal(['tag:ci'], 'bob'), 'user "bob" does not own tag "tag:ci": its tagOwners rule at policy.hujson:4:5 allows alice@example.com');
});

test('the admin API and the CLI refuse with the same words', async () => {
  const created = await api(server, 'POST', '/api/v1/preauthkey', { aclTags: ['tag:undefined'] });
  assert.equal(created.status, 400);
  assert.match(created.json.message, /tag "tag:undefined" is not defined in the policy's tagOwners/);

  const key = await cliAsync(server, 'preauthkeys', 'create', '-t', 'tag:undefined');
  assert.equal(key.status, 1);
  assert.match(key.stderr, /^tailplane: tag "tag:undefined" is not defined in the policy's tagOwners \(defined: tag:ci, tag:db\)$/m);
  const owned = await cliAsync(server, 'preauthkeys', 'create', '-u', 'alice', '-t', 'tag:db');
  assert.equal(owned.status, 1);
  assert.match(owned.stderr, /user "alice" does not own tag "tag:db"/);

  const tag = await cliAsync(server, 'nodes', 'tag', 'box', '-t', 'tag:nope');
  assert.equal(tag.status, 1);
  assert.match(tag.stderr, /tag "tag:nope" is not defined in the policy's tagOwners/);
  assert.deepEqual(server.tailnet.nodes.list().find((n) => n.givenName === 'box')?.tags, ['tag:db']);
});
