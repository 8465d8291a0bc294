/**
 * OIDC login against a real identity provider (oidc-provider on loopback) with unmodified tailscaled: the login
 * URL of `tailscale up` goes through the IdP's login form and registers the machine to the person's user (by
 * issuer+subject); a disallowed domain or unverified e-mail is refused with a page saying why and no node; a later
 * login updates e-mail and display name; tampered and replayed callbacks, a wrong nonce, a tampered code and a
 * forged issuer are refused; an IdP down at start only degrades /health; a bad oidc.* config stops `serve` naming
 * the key.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ConfigError, defaultConfig, loadConfig } from '../../src/config/config.ts';
import { createHarness, freePort, type Daemon } from '../harness/tailscaled.ts';
import { browse, startTestIdp, type TestIdp } from '../helpers/oidc-idp.ts';
import { api, inProcessServer, repoRoot, tempDir } from '../helpers/server.ts';

const harness = createHarness();
let server: Awaited<ReturnType<typeof inProcessServer>>;
let idp: TestIdp;
let idpPort: number;
const clientSecret = 'test-client-secret-0123456789abcdef';

const health = async () => (await fetch(server.url + '/health')).json() as Promise<{ status: string; oidc?: { state: string; error?: string } }>;

before(async () => {
  idpPort = await freePort();
  // The server starts before its IdP: discovery fails, is retried with back-off, and serve keeps running.
  server = await inProcessServer({
    oidc: {
      ...defaultConfig().oidc,
      issuer: `http://127.0.0.1:${idpPort}`,
      clientId: 'tailplane',
      clientSecret,
      scopes: ['openid', 'email', 'profile', 'groups'],
      allowedDomains: ['example.com'],
      consoleRoles: { eng: 'network-admin', staff: 'auditor' },
    },
  });
});

after(async () => {
  await harness.cleanup();
  await server?.close();
  await idp?.close();
});

test('an unreachable issuer at start degrades /health and is retried until the IdP answers', async () => {
  const down = await health();
  assert.equal(down.status, 'degraded');
  // The public answer names the state; why (the issuer's address in the error) takes an API key.
  assert.deepEqual(down.oidc, { state: 'unreachable' });
  const detail = (await api(server, 'GET', '/api/v1/health')).json;
  assert.equal(detail.oidc.state, 'unreachable');
  assert.match(detail.oidc.error, /./);
  idp = await startTestIdp({
    port: idpPort,
    redirectUri: server.url + '/oidc/callback',
    accounts: {
      alice: { email: 'alice@example.com', email_verified: true, name: 'Alice A', groups: ['eng'] },
      mallory: { email: 'mallory@evil.test', email_verified: true, name: 'Mallory' },
      unverified: { email: 'carol@example.com', email_verified: false, name: 'Carol' },
      bob: { email: 'bob@example.com', email_verified: true, name: 'Bob', groups: ['sales'] },
    },
  });
  assert.equal(idp.clientSecret, clientSecret);
  const deadline = Date.now() + 15_000;
  while ((await health()).status !== 'ok') {
    assert.ok(Date.now() < deadline, `still ${JSON.stringify(await health())}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal((await health()).oidc?.state, 'ready');
});

/** `tailscale up` without a key on a fresh daemon; returns the daemon, the running command and its login URL. */
async function interactiveUp(name: string) {
  const d = await harness.start({ name });
  const up = d.startUp({ loginServer: server.url, hostname: name, timeoutMs: 60_000 });
  return { d, up, url: await up.authUrl(20_000) };
}

const nodeNamed = (name: string) => server.tailnet.nodes.list().find((n) => n.hostname === name);
let alice: Daemon;

test('an allowed person logs in through the IdP: the machine is registered to their user and reaches Running', async () => {
  const { d, up, url } = await interactiveUp('alice-laptop');
  const page = await browse(url, 'alice');
  assert.equal(page.status, 200, page.text);
  assert.match(page.text, /Machine registered/);
  assert.ok(page.visited.some((u) => u.startsWith(idp.issuer + '/interaction/')), 'went through the IdP login form');
  const done = await up.done;
  assert.equal(done.code, 0, done.stderr + done.stdout);
  await d.waitFor(async () => (await d.status()).BackendState === 'Running', 15_000, 'alice-laptop running');
  const user = server.tailnet.users.byProviderId(`${idp.issuer}#alice`);
  assert.ok(user, 'user created from issuer+subject');
  assert.equal(user.name, 'alice@example.com');
  assert.equal(user.email, 'alice@example.com');
  assert.equal(user.displayName, 'Alice A');
  const node = nodeNamed('alice-laptop');
  assert.equal(node?.userId, user.id);
  assert.equal(node?.registerMethod, 'interactive');
  // expiry from_token: the node key expires with the ID token (oidc-provider issues them for an hour).
  const ttl = Date.parse(node!.expiry!) - Date.now();
  assert.ok(ttl > 50 * 60_000 && ttl <= 60 * 60_000, `expiry ${node!.expiry}`);
  // The audit log names the person who logged in, through the oidc door, for the user and the machine.
  const audited = server.tailnet.audit.list({ actor: 'oidc:alice@example.com' }).entries;
  assert.deepEqual(
    audited.map((e) => [e.door, e.action, e.object]),
    [
      ['oidc', 'user.create', `user:${user.id}`],
      ['oidc', 'node.create', `node:${node!.id}`],
      ['oidc', 'node.update', `node:${node!.id}`], // the key expiry from the ID token
    ],
    JSON.stringify(audited),
  );
  alice = d;
});

test('a later login updates e-mail and display name of the same user; the two machines ping each other', async () => {
  const before = server.tailnet.users.byProviderId(`${idp.issuer}#alice`)!;
  idp.accounts.set('alice', { email: 'alice.a@example.com', email_verified: true, name: 'Alice Anders', groups: ['eng', 'staff'] });
  const { d, up, url } = await interactiveUp('alice-desktop');
  assert.equal((await browse(url, 'alice')).status, 200);
  assert.equal((await up.done).code, 0);
  const after = server.tailnet.users.get(before.id);
  assert.equal(after.email, 'alice.a@example.com');
  assert.equal(after.displayName, 'Alice Anders');
  assert.equal(after.name, before.name, 'the user name stays (policies refer to it)');
  assert.equal(server.tailnet.users.list().filter((u) => u.providerId === before.providerId).length, 1);
  assert.equal(nodeNamed('alice-desktop')?.userId, before.id);
  const [ip] = await alice.ip();
  await d.waitFor(async () => /pong from/.test((await d.ping(ip!)).stdout), 30_000, 'desktop pings laptop');
});

test('a person outside the allowed domains, or with an unverified e-mail, sees why and the machine stays unregistered', async () => {
  for (const [login, why] of [
    ['mallory', /e-mail domain &#34;evil\.test&#34; is not among the domains allowed/],
    ['unverified', /carol@example\.com is not verified/],
  ] as const) {
    const { up, url } = await interactiveUp(`${login}-pc`);
    const page = await browse(url, login);
    assert.equal(page.status, 403, page.text);
    assert.match(page.text, /Not allowed/);
    assert.match(page.text, why);
    assert.equal(nodeNamed(`${login}-pc`), undefined);
    assert.equal(server.tailnet.users.byProviderId(`${idp.issuer}#${login}`), undefined, 'no user created');
    up.cancel();
  }
});

test('a tampered state, a replayed callback and an unknown login link are refused', async () => {
  const { up, url } = await interactiveUp('tamper-pc');
  const isCallback = (u: string) => u.startsWith(server.url + '/oidc/callback');
  const stopped = await browse(url, 'alice', { stopAt: isCallback });
  const tampered = new URL(stopped.url);
  tampered.searchParams.set('state', tampered.searchParams.get('state')!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')));
  const bad = await fetch(tampered);
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /unknown, already used or expired/);
  // The genuine callback still works once; the same URL again is a replay.
  const good = await fetch(stopped.url);
  assert.equal(good.status, 200, await good.text());
  assert.equal((await up.done).code, 0);
  const replay = await fetch(stopped.url);
  assert.equal(replay.status, 400);
  assert.match(await replay.text(), /already used/);
  const unknown = await fetch(server.url + '/register/no-such-login');
  assert.equal(unknown.status, 404);
});

test('a wrong nonce, a tampered code and a forged issuer in the callback are refused with a clear error and no login', async () => {
  const { up, url } = await interactiveUp('forged-pc');
  const isAuth = (u: URL) => u.href.startsWith(idp.issuer + '/auth?');
  const isCallback = (u: URL) => u.href.startsWith(server.url + '/oidc/callback');
  const cases: [string, (u: URL) => void, RegExp][] = [
    // The IdP signs an ID token carrying the nonce it was sent; one we did not issue must not log anybody in.
    ['nonce', (u) => isAuth(u) && u.searchParams.set('nonce', 'forged-nonce-0123456789'), /could not be verified: the ID token's "nonce" claim does not match this login/],
    ['code', (u) => isCallback(u) && u.searchParams.set('code', u.searchParams.get('code')!.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a'))), /could not be verified: the identity provider refused the code: invalid_grant/],
    ['iss', (u) => isCallback(u) && u.searchParams.set('iss', 'http://127.0.0.1:1/evil'), /could not be verified: unexpected "iss" \(issuer\) response parameter value/],
  ];
  for (const [what, rewrite, why] of cases) {
    const page = await browse(url, 'alice', { rewrite });
    assert.equal(page.status, 400, `${what}: ${page.text}`);
    assert.match(page.text, /Login failed/, what);
    assert.match(page.text.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))), why, what);
    assert.doesNotMatch(page.text, /eyJ|client_secret|test-client-secret/, `${what}: no token or secret on the page`);
    assert.equal(nodeNamed('forged-pc'), undefined, `${what}: no machine registered`);
  }
  // The same pending login still works untampered: the refusals were the tampering, nothing else.
  const genuine = await browse(url, 'alice');
  assert.equal(genuine.status, 200, genuine.text);
  assert.equal((await up.done).code, 0);
  assert.ok(nodeNamed('forged-pc'));
});

test('console login through the IdP lands with the role its groups map to; no mapped group, no console', async () => {
  const login = await (await fetch(server.url + '/admin/login?next=/admin/users')).text();
  assert.match(login, /href="\/oidc\/console-login\?next=%2Fadmin%2Fusers"/);
  const jar = new Map<string, string>();
  const page = await browse(server.url + '/oidc/console-login?next=%2Fadmin%2Fusers', 'alice', { jar });
  assert.equal(page.status, 200, page.text);
  assert.match(page.text, /Logged in as alice\.a@example\.com \(network-admin\)/);
  const users = await fetch(server.url + '/admin/users', { headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') }, redirect: 'manual' });
  assert.equal(users.status, 200);
  const text = await users.text();
  // eng -> network-admin and staff -> auditor: the stronger role wins.
  assert.match(text, /<code>alice\.a@example\.com<\/code> \(single sign-on\) · role <strong[^>]*>network-admin</);
  const refused = await browse(server.url + '/oidc/console-login', 'bob');
  assert.equal(refused.status, 403);
  assert.match(refused.text, /no console role/);
  const outsider = await browse(server.url + '/oidc/console-login', 'mallory');
  assert.equal(outsider.status, 403);
  assert.match(outsider.text, /evil\.test/);
});

test('an SSH check is approved by a fresh IdP login of its source user, and by nobody else', async () => {
  const src = nodeNamed('alice-laptop')!;
  const dst = nodeNamed('alice-desktop')!;
  const held = () =>
    server.tailnet.sshChecks.start({
      srcNodeId: src.id,
      srcNode: src.givenName,
      srcUserId: src.userId!,
      srcUser: server.tailnet.users.get(src.userId!).name,
      dstNodeId: dst.id,
      dstNode: dst.givenName,
      sshUser: 'root',
      localUser: 'root',
      periodMs: 0,
    });
  const check = held();
  const other = await browse(`${server.url}/oidc/ssh-check/${check.id}`, 'bob');
  assert.equal(other.status, 403, other.text);
  assert.match(other.text, /Only alice@example\.com, who started this SSH session, can approve it/);
  assert.equal(server.tailnet.sshChecks.get(check.id)?.state, 'pending');
  const page = await browse(`${server.url}/oidc/ssh-check/${check.id}`, 'alice');
  assert.equal(page.status, 200, page.text);
  assert.match(page.text, /SSH session approved/);
  const decided = server.tailnet.sshChecks.get(check.id)!;
  assert.equal(decided.state, 'approved');
  assert.equal(decided.decidedBy, 'alice@example.com (oidc login)');
  const again = await fetch(`${server.url}/oidc/ssh-check/${check.id}`, { redirect: 'manual' });
  assert.equal(again.status, 404, 'a decided check cannot be sent through the IdP again');
});

test('bad oidc config is refused naming the key; serve stops on it', () => {
  const dir = tempDir();
  const file = join(dir, 'config.json');
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ issuer: 'https://idp.example.com' }, /oidc\.client_id.*required/],
    [{ issuer: 'ftp://idp.example.com', client_id: 'x' }, /oidc\.issuer/],
    [{ issuer: 'https://idp.example.com', client_id: 'x', scopes: ['email'] }, /oidc\.scopes.*openid/],
    [{ issuer: 'https://idp.example.com', client_id: 'x', expiry: 'soon' }, /oidc\.expiry/],
    [{ issuer: 'https://idp.example.com', client_id: 'x', client_secret_path: join(dir, 'missing') }, /oidc\.client_secret_path.*cannot read/],
    [{ issuer: 'https://idp.example.com', client_id: 'x', allowed_domains: 'example.com' }, /oidc\.allowed_domains.*list/],
    [{ issuer: 'https://idp.example.com', client_id: 'x', extra_params: ['a'] }, /oidc\.extra_params/],
    [{ issuer: 'https://idp.example.com', client_id: 'x', pkce: 'yes' }, /oidc\.pkce/],
    [{ issuer: 'https://idp.example.com', client_id: 'x', policy_groups: 'yes' }, /oidc\.policy_groups.*boolean/],
    [{ issuer: 'https://idp.example.com', client_id: 'x', console_roles: { eng: 'root' } }, /oidc\.console_roles\.eng.*expected one of admin/],
  ];
  for (const [oidc, expected] of cases) {
    writeFileSync(file, JSON.stringify({ oidc }));
    assert.throws(() => loadConfig({ file, env: {} }), (err: Error) => err instanceof ConfigError && expected.test(err.message));
  }
  // The real CLI: `serve` exits non-zero with the message and never listens.
  writeFileSync(file, JSON.stringify({ oidc: cases[0]![0], listen_addr: '127.0.0.1:0', data_dir: join(dir, 'data') }));
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'tailplane.js'), 'serve', '--config', file], { encoding: 'utf8', timeout: 20_000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, cases[0]![1]);
  assert.doesNotMatch(r.stderr, /listening on/);
});
