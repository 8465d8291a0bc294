/**
 * The admin console in a real headless Chromium against a real `tailplane serve` and real tailscaled clients:
 * login, a machine appearing online live, route approval, the policy editor (error at its line, access diff,
 * save), roles (an auditor cannot save), escaping, CSRF, keyboard reach and axe-core on every page.
 * With TAILPLANE_SCREENSHOTS=<dir> it also writes the README's screenshots there.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { createHarness, type Daemon } from '../harness/tailscaled.ts';
import { launchBrowser, logInConsole, seriousA11yViolations, unreachableByKeyboard } from '../helpers/browser.ts';
import { withLogs } from '../helpers/failure.ts';
import { api, spawnServer, type ChildServer } from '../helpers/server.ts';

const harness = createHarness();
const prefix = '10.98.0.0/24';
const xssName = '<img src=x onerror=alert(1)>';
const screenshots = process.env.TAILPLANE_SCREENSHOTS;
let server: ChildServer;
let auditorKey: string;
let authKey: string;
let browser: BrowserContext;
let page: Page;
let router: Daemon;
/** Dialogs (alert) opened by any page: an executed XSS payload would show up here. */
const dialogs: string[] = [];
/** Console messages about refused scripts or styles (CSP violations). */
const cspErrors: string[] = [];

const policyText = (extraRule = '') => `{
  "tagOwners": { "tag:server": ["alice@"] },
  "acls": [
    { "action": "accept", "src": ["alice@"], "dst": ["*:22,443"] },${extraRule}
  ],
  "tests": [{ "src": "alice@", "accept": ["100.64.0.1:22"] }],
}
`;

const step = <T>(what: string, fn: () => Promise<T>) => withLogs(harness, () => server.log(), what, fn);

const logIn = (key: string) => logInConsole(page, server.url, key);

before(async () => {
  server = await spawnServer({ env: { TAILPLANE_DNS_BASE_DOMAIN: 'tail.example' } });
  await api(server, 'POST', '/api/v1/user', { name: 'alice' });
  // Allow-all, as a new tailnet, with tag:server declared: a key may only carry a tag the policy defines.
  const allowAll = '{"tagOwners": {"tag:server": ["alice@"]}, "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}';
  assert.equal((await api(server, 'PUT', '/api/v1/policy', { policy: allowAll })).status, 200);
  authKey = (await api(server, 'POST', '/api/v1/preauthkey', { user: '1', reusable: true })).json.preAuthKey.key;
  auditorKey = (await api(server, 'POST', '/api/v1/apikey', { role: 'auditor' })).json.apiKey;
  browser = await launchBrowser();
  page = browser.pages()[0] ?? (await browser.newPage());
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) cspErrors.push(m.text());
  });
});

after(async () => {
  await browser?.close();
  await harness.cleanup();
  await server?.stop();
});

test('log in: a wrong key is refused; the right one gives an httpOnly, SameSite=Strict session, never stored in the page', async () => {
  await page.goto(`${server.url}/admin/login`);
  await page.getByLabel('Admin API key').fill('tpkey-api-wrong-wrongwrongwrong');
  await page.getByRole('button', { name: 'Log in' }).click();
  assert.match(await page.getByRole('alert').innerText(), /invalid, expired or revoked/);

  await logIn(server.apiKey);
  assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Machines');
  const session = (await browser.cookies()).find((c) => c.name === 'tailplane_session')!;
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.ok(session.expires > Date.now() / 1000, 'the session cookie expires');
  assert.equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read the session');
  const storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.ok(!storage.includes(server.apiKey) && storage === '{}{}', 'nothing in browser storage');
  const res = await page.request.get(`${server.url}/admin/machines`);
  assert.match(res.headers()['content-security-policy']!, /script-src 'self'/);
  assert.doesNotMatch(res.headers()['content-security-policy']!, /unsafe-inline/);
});

test('a real tailscaled joins and appears online without a reload', async () => {
  await page.goto(`${server.url}/admin/machines`);
  await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));
  router = await harness.start({ name: 'router' });
  await step('router joins', async () => {
    const up = await router.up({ loginServer: server.url, authKey, hostname: 'router', extraArgs: [`--advertise-routes=${prefix}`] });
    assert.equal(up.code, 0, up.stderr);
    const row = page.locator('#machine-rows tr', { hasText: 'router' });
    await row.getByText('Online').waitFor({ timeout: 30_000 });
    assert.match(await row.innerText(), /1 awaiting approval/);
  });
  assert.equal(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument), true, 'the page was not reloaded');
  assert.match(await page.locator('#machine-count').innerText(), /^1 machine/);
});

test('approve its advertised route on the machine page', async () => {
  await page.locator('#machine-rows').getByRole('link', { name: 'router' }).click();
  await page.getByRole('heading', { name: 'router' }).waitFor();
  await page.getByLabel(`Approve ${prefix}`).check();
  await page.getByRole('button', { name: 'Save approved routes' }).click();
  assert.match(await page.getByRole('status').first().innerText(), new RegExp(`Approved routes: ${prefix.replace('.', '\\.')}`));
  const nodes = (await api(server, 'GET', '/api/v1/node')).json.nodes;
  assert.deepEqual(nodes[0].approvedRoutes, [prefix]);
  // The route is served: the primary router is the one the control plane computed.
  await page.goto(`${server.url}/admin/routes`);
  assert.match(await page.locator('tbody tr', { hasText: prefix }).innerText(), /router\s+yes\s+yes\s+primary\s+online/);
});

test('an XSS hostname renders as text', async () => {
  const evil = await harness.start({ name: 'evil' });
  const tagKey = (await api(server, 'POST', '/api/v1/preauthkey', { aclTags: ['tag:server'] })).json.preAuthKey.key;
  await step('evil joins', async () => {
    assert.equal((await evil.up({ loginServer: server.url, authKey: tagKey, hostname: 'evil' })).code, 0);
    // The CLI refuses such a --hostname; the daemon's local API takes it and reports it to the control plane.
    const r = await evil.cli(['debug', 'localapi', 'PATCH', '/localapi/v0/prefs', JSON.stringify({ Hostname: xssName, HostnameSet: true })]);
    assert.equal(r.code, 0, r.stderr);
    await page.goto(`${server.url}/admin/machines`);
    await page.locator('#machine-rows', { hasText: xssName }).waitFor({ timeout: 30_000 });
  });
  assert.equal(await page.locator('#machine-rows img').count(), 0, 'no <img> element was created');
  const id = (await api(server, 'GET', '/api/v1/node')).json.nodes.find((n: { givenName: string }) => n.givenName === 'evil').id;
  await page.goto(`${server.url}/admin/machines/${id}`);
  assert.equal(await page.locator('main img').count(), 0);
  assert.match(await page.locator('.details').innerText(), new RegExp(xssName.replace(/[()]/g, '\\$&')));
  assert.deepEqual(dialogs, [], 'no script ran');
  if (screenshots) {
    await page.goto(`${server.url}/admin/machines`);
    await page.screenshot({ path: join(screenshots, 'machines.png') });
  }
});

test('policy editor: an error shows its line, the fix shows the access diff, then it saves', async () => {
  await page.goto(`${server.url}/admin/acls`);
  const editor = page.getByLabel('Policy file');
  // Line 5 has a misspelt field.
  await editor.fill(policyText('\n    { "action": "accept", "scr": ["alice@"], "dst": ["*:80"] },'));
  await page.getByRole('button', { name: 'Check and preview' }).click();
  const errors = page.locator('#policy-errors');
  assert.match(await errors.innerText(), /Line 5, column \d+:/);
  assert.equal(await page.locator('.gutter .error-line').innerText(), '5', 'the editor marks line 5');
  assert.equal(await page.getByRole('button', { name: 'Save policy' }).count(), 0, 'no save before a clean preview');
  await errors.getByRole('button', { name: /Line 5/ }).first().click();
  const cursorLine = await editor.evaluate((el: HTMLTextAreaElement) => el.value.slice(0, el.selectionStart).split('\n').length);
  assert.equal(cursorLine, 5, 'the error button puts the cursor on its line');

  const fixed = policyText('\n    { "action": "accept", "src": ["alice@"], "dst": ["*:80"] },');
  await page.getByLabel('Policy file').fill(fixed);
  await page.getByRole('button', { name: 'Check and preview' }).click();
  // Against the live allow-all policy: tag:server (evil) loses everything, alice keeps only 22, 80 and 443.
  const lost = page.locator('#access-diff tbody tr.loss');
  assert.match(await lost.filter({ hasText: 'tag:server' }).filter({ hasText: 'router' }).first().innerText(), /loses\s+tag:server[\s\S]*router/);
  // The router's subnet, reached through '*' before, is in the diff too.
  assert.match(await lost.filter({ hasText: 'tag:server' }).filter({ hasText: '10.98.0.0/24' }).first().innerText(), /loses\s+tag:server/);
  assert.match(await lost.filter({ hasText: 'alice' }).filter({ hasText: 'evil' }).first().innerText(), /loses\s+alice[\s\S]*evil/);
  assert.equal(await page.locator('#access-diff tbody tr.gain').count(), 0);
  assert.equal(await page.locator('#policy-errors').count(), 0);
  if (screenshots) await page.screenshot({ path: join(screenshots, 'policy-editor.png'), fullPage: true });
  await page.getByRole('button', { name: 'Save policy' }).click();
  assert.match(await page.getByRole('status').first().innerText(), /Policy saved/);
  assert.equal((await api(server, 'GET', '/api/v1/policy')).json.policy, fixed);
});

test('a POST without the CSRF token is refused', async () => {
  const noToken = await page.request.post(`${server.url}/admin/users`, { form: { name: 'mallory' } });
  assert.equal(noToken.status(), 403);
  assert.match(await noToken.text(), /CSRF/);
  const wrongToken = await page.request.post(`${server.url}/admin/users`, { form: { name: 'mallory', _csrf: 'x'.repeat(43) } });
  assert.equal(wrongToken.status(), 403);
  const loginWithout = await page.request.post(`${server.url}/admin/login`, { form: { key: server.apiKey } });
  assert.equal(loginWithout.status(), 403, 'the login form needs its token too');
  const users = (await api(server, 'GET', '/api/v1/user')).json.users.map((u: { name: string }) => u.name);
  assert.deepEqual(users, ['alice']);
});

test('every page: the keyboard reaches every action, and axe finds no serious or critical violation', async () => {
  const id = (await api(server, 'GET', '/api/v1/node')).json.nodes[0].id;
  for (const path of ['machines', `machines/${id}`, 'users', 'users/1/delete', 'keys', 'acls', 'dns', 'routes']) {
    await page.goto(`${server.url}/admin/${path}`);
    assert.deepEqual(await unreachableByKeyboard(page), [], `${path}: every action is reachable with Tab`);
    assert.deepEqual(await seriousA11yViolations(page), [], `${path}: axe`);
  }
  // A created pre-auth key is shown once as the full `tailscale up` line, with a copy button.
  await page.goto(`${server.url}/admin/keys`);
  await page.getByLabel('User', { exact: true }).selectOption({ label: 'alice' });
  await page.getByRole('button', { name: 'Create pre-auth key' }).click();
  const line = await page.getByLabel('Join a machine with:').inputValue();
  assert.match(line, new RegExp(`^tailscale up --login-server ${server.url} --auth-key tpkey-auth-\\S+$`));
  assert.deepEqual(await unreachableByKeyboard(page), []);
  assert.deepEqual(cspErrors, [], 'no CSP violation on any page');
});

test('an auditor sees the policy but cannot save it, in the console or the API; revoking its key ends the session', async () => {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(/\/admin\/login$/);
  await logIn(auditorKey);
  await page.goto(`${server.url}/admin/acls`);
  assert.match(await page.locator('main').innerText(), /auditor\) may read the policy but not change it/);
  await page.getByRole('button', { name: 'Check and preview' }).click();
  await page.locator('#access-diff').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Save policy' }).count(), 0, 'no save button for an auditor');
  // Sent anyway, with a valid CSRF token, the save is refused by the server.
  const form = Object.fromEntries(
    await page.locator('form.policy').evaluate((f: HTMLFormElement) => [...new FormData(f).entries()].map(([k, v]) => [k, String(v)])),
  );
  const before = (await api(server, 'GET', '/api/v1/policy')).json.policy;
  const res = await page.request.post(`${server.url}/admin/acls/save`, { form: { ...form, policy: '{}' }, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  assert.match(await res.text(), /the auditor role may not change policy/);
  const viaApi = await api({ url: server.url, apiKey: auditorKey }, 'PUT', '/api/v1/policy', { policy: '{}' });
  assert.equal(viaApi.status, 403);
  assert.match(viaApi.json.message, /auditor role may not change policy/);
  assert.equal((await api(server, 'GET', '/api/v1/policy')).json.policy, before);
  // The machine page shows no actions to an auditor.
  await page.goto(`${server.url}/admin/machines/${(await api(server, 'GET', '/api/v1/node')).json.nodes[0].id}`);
  assert.equal(await page.getByRole('button', { name: /Delete|Rename|Expire|Save approved/ }).count(), 0);
  // Revoking the key ends its console session at once.
  assert.equal((await api(server, 'POST', '/api/v1/apikey/expire', { prefix: auditorKey.split('-')[2] })).status, 200);
  await page.goto(`${server.url}/admin/machines`);
  assert.match(page.url(), /\/admin\/login\?next=/);
});
