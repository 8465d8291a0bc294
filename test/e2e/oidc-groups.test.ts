/**
 * IdP groups in the policy, against a real identity provider (oidc-provider on loopback) and unmodified
 * tailscaled: with oidc.policy_groups on, a person whose groups claim says `eng` is a member of the policy's
 * group:eng and reaches what it may reach (a real TCP connection through the tailnet); the policy checker, its
 * tests, the access diff and API v2 see the same member. A machine whose key expired logs in again through the
 * IdP and comes back as the same node. When the IdP drops the person from `eng`, their next login takes the
 * access away from all their machines, and the audit log says so; an SSH check login refreshes the groups as well.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { defaultConfig } from '../../src/config/config.ts';
import { createHarness, freePort, type Daemon } from '../harness/tailscaled.ts';
import { browse, startTestIdp, type TestIdp } from '../helpers/oidc-idp.ts';
import { api, inProcessServer } from '../helpers/server.ts';
import { echoesThrough } from '../helpers/socks.ts';

const harness = createHarness();
let server: Awaited<ReturnType<typeof inProcessServer>>;
let idp: TestIdp;
let echo: Server;
let port: number;
let db: Daemon;
let dbIp: string;
let laptop: Daemon;

/** group:eng is declared with no listed members: its members come from the IdP alone. */
const policy = (tests: string) => `{
  "groups": { "group:eng": [] },
  "tagOwners": { "tag:db": [] },
  "acls": [{ "action": "accept", "src": ["group:eng"], "dst": ["tag:db:*"] }],
  "tests": [${tests}],
}`;
const engTest = (p: number) => `{ "src": "group:eng", "accept": ["tag:db:${p}"] }`;

before(async () => {
  echo = createServer((sock) => sock.pipe(sock));
  await new Promise<void>((res) => echo.listen(0, '127.0.0.1', res));
  port = (echo.address() as { port: number }).port;
  const idpPort = await freePort();
  server = await inProcessServer({
    derp: { enabled: true, regionId: 999, regionCode: 'tailplane', stunListenAddr: '127.0.0.1:0', mapPath: '' },
    oidc: {
      ...defaultConfig().oidc,
      issuer: `http://127.0.0.1:${idpPort}`,
      clientId: 'tailplane',
      clientSecret: 'test-client-secret-0123456789abcdef',
      scopes: ['openid', 'email', 'profile', 'groups'],
      policyGroups: true,
    },
  });
  idp = await startTestIdp({
    port: idpPort,
    redirectUri: server.url + '/oidc/callback',
    accounts: {
      // "/Domain Users" cannot be named in a policy: it is left out of the stored groups.
      alice: { email: 'alice@example.com', email_verified: true, name: 'Alice', groups: ['eng', '/Domain Users'] },
    },
  });
  // The server started before the IdP: its discovery succeeds on a retry, which logins must wait for.
  for (const deadline = Date.now() + 30_000; ; await new Promise((r) => setTimeout(r, 200))) {
    const health = (await (await fetch(server.url + '/health')).json()) as { oidc?: { state: string } };
    if (health.oidc?.state === 'ready') break;
    assert.ok(Date.now() < deadline, `the IdP was not discovered: ${JSON.stringify(health)}`);
  }
  server.tailnet.setPolicy(policy(''));
  const key = server.tailnet.preAuthKeys.create({ userId: null, tags: ['tag:db'] }).key;
  db = await harness.start({ name: 'db' });
  const r = await db.up({ loginServer: server.url, authKey: key, hostname: 'db', timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  dbIp = (await db.ip())[0]!;
});

after(async () => {
  await harness.cleanup();
  await server?.close();
  await idp?.close();
  echo?.close();
});

const alice = () => server.tailnet.users.byProviderId(`${idp.issuer}#alice`)!;
const nodeNamed = (name: string) => server.tailnet.nodes.list().find((n) => n.hostname === name)!;
const reaches = (d: Daemon) => echoesThrough(d.socksAddr, dbIp, port);
/** Waits until `d` reaches db (or, with `want` false, no longer does): the netmap change arrives on the live stream. */
const waitReach = (d: Daemon, want: boolean, what: string) => d.waitFor(async () => (await reaches(d)) === want, 30_000, what);

/** `tailscale up` through the IdP login as alice, on a new daemon or again on an existing one. */
async function loginAs(name: string, existing?: Daemon): Promise<Daemon> {
  const d = existing ?? (await harness.start({ name }));
  const up = d.startUp({ loginServer: server.url, hostname: name, timeoutMs: 60_000 });
  const page = await browse(await up.authUrl(30_000), 'alice');
  assert.equal(page.status, 200, page.text);
  const done = await up.done;
  assert.equal(done.code, 0, done.stderr + done.stdout);
  await d.waitFor(async () => (await d.status()).BackendState === 'Running', 20_000, `${name} running`);
  return d;
}

const validate = (tests: string) => api(server, 'POST', '/api/v2/tailnet/-/acl/validate', policy(tests), { 'content-type': 'application/hujson' });

test('a person in the IdP group eng is a member of group:eng: a real connection to tag:db goes through', async () => {
  laptop = await loginAs('alice-laptop');
  assert.deepEqual(alice().idpGroups, ['eng']);
  await waitReach(laptop, true, 'alice-laptop reaches db through group:eng');
  // The audit log records the groups the login brought.
  const created = server.tailnet.audit.list({ actor: 'oidc:alice@example.com' }).entries.find((e) => e.action === 'user.create');
  assert.match(created?.summary ?? '', /idp groups: \+eng$/);
});

test('the checker, policy tests, access diff and API v2 see the IdP member', async () => {
  // Policy tests naming group:eng run against alice; API v2 validate answers 200 with an empty body when they pass.
  const ok = await validate(engTest(port));
  assert.equal(ok.status, 200);
  assert.equal(ok.json, null, JSON.stringify(ok.json));
  const failing = await validate(`{ "src": "group:eng", "deny": ["tag:db:${port}"] }`);
  assert.match(JSON.stringify(failing.json), /group:eng should deny tag:db:\d+ but it is accepted/);
  const v1 = await api(server, 'PUT', '/api/v1/policy', { policy: policy(engTest(port)) });
  assert.equal(v1.status, 200, JSON.stringify(v1.json));
  // The access diff of dropping the rule names alice as the one who loses db.
  const diff = await api(server, 'POST', '/api/v1/policy/diff', { policy: '{ "groups": { "group:eng": [] }, "tagOwners": { "tag:db": [] }, "acls": [] }' });
  assert.equal(diff.status, 200, JSON.stringify(diff.json));
  assert.match(diff.json.text, /alice@example\.com/);
  // The exported topology carries the groups, so an offline `policy check --topology` agrees.
  const topo = (await api(server, 'GET', '/api/v1/topology')).json;
  assert.deepEqual(topo.users.find((u: { name: string }) => u.name === 'alice@example.com').idpGroups, ['eng']);
});

test('an expired machine logs in again through the IdP and comes back as the same node, with its access', async () => {
  const before = nodeNamed('alice-laptop');
  server.tailnet.nodes.setExpiry(before.id, new Date(Date.now() - 1000).toISOString());
  await laptop.waitFor(async () => (await laptop.status()).BackendState === 'NeedsLogin', 20_000, 'alice-laptop NeedsLogin after expiry');
  await loginAs('alice-laptop', laptop);
  const after = nodeNamed('alice-laptop');
  assert.equal(after.id, before.id, 'same node');
  assert.equal(after.ipv4, before.ipv4, 'same address');
  assert.equal(after.givenName, before.givenName, 'same name');
  assert.equal(after.machineKey, before.machineKey, 'same machine');
  assert.equal(after.userId, before.userId);
  assert.ok(Date.parse(after.expiry!) > Date.now() + 50 * 60_000, `new expiry from the ID token: ${after.expiry}`);
  assert.equal(server.tailnet.nodes.list().filter((n) => n.hostname === 'alice-laptop').length, 1, 'no second node');
  await waitReach(laptop, true, 'alice-laptop reaches db again after re-login');
});

test('dropped from eng at the IdP, the next login removes the access from all of their machines', async () => {
  idp.accounts.set('alice', { email: 'alice@example.com', email_verified: true, name: 'Alice', groups: ['sales'] });
  // Between logins nothing changes: the membership is what the last login said.
  assert.equal(await reaches(laptop), true, 'still a member until the next login');
  const phone = await loginAs('alice-phone');
  assert.deepEqual(alice().idpGroups, ['sales']);
  await waitReach(laptop, false, 'alice-laptop cut off from db without reconnecting');
  assert.equal(await reaches(phone), false, 'the new machine gets nothing either');
  const update = server.tailnet.audit.list({ actor: 'oidc:alice@example.com' }).entries.find((e) => e.action === 'user.update' && /idp groups/.test(e.summary));
  assert.match(update?.summary ?? '', /idp groups: \+sales -eng/);
  // The checker sees the same: the stored policy's test on group:eng no longer holds.
  const refused = await validate(engTest(port));
  assert.match(JSON.stringify(refused.json), /group:eng matches no user, tag or node/);
});

test('an SSH check approval is a login too: it refreshes the groups, and back in eng the access returns', async () => {
  idp.accounts.set('alice', { email: 'alice@example.com', email_verified: true, name: 'Alice', groups: ['eng'] });
  const src = nodeNamed('alice-laptop');
  const dst = nodeNamed('db');
  const check = server.tailnet.sshChecks.start({
    srcNodeId: src.id,
    srcNode: src.givenName,
    srcUserId: src.userId!,
    srcUser: alice().name,
    dstNodeId: dst.id,
    dstNode: dst.givenName,
    sshUser: 'root',
    localUser: 'root',
    periodMs: 0,
  });
  const page = await browse(`${server.url}/oidc/ssh-check/${check.id}`, 'alice');
  assert.equal(page.status, 200, page.text);
  assert.equal(server.tailnet.sshChecks.get(check.id)?.state, 'approved');
  assert.deepEqual(alice().idpGroups, ['eng']);
  await waitReach(laptop, true, 'alice-laptop reaches db again once the IdP puts her back in eng');
});
