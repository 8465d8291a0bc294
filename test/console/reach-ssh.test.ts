/**
 * The console's "what can X reach" view and SSH checks page in a real headless Chromium against a real server:
 * machines registered over the real Noise transport with their own machine keys, a policy with groups, tags and
 * an SSH check rule. The reach view is compared with what the CLI's `policy compile` prints for the same live
 * policy and tailnet; SSH checks are opened the way a destination tailscaled opens them (its Noise request for
 * the session's action), approved from the page (the held session is then let through), denied by a
 * network-admin, and only seen by an auditor, whose forged POST is refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { generateKeyPair } from '../../src/control/noise/primitives.ts';
import { noiseRequest } from '../control/noise-client.ts';
import { launchBrowser, logInConsole, seriousA11yViolations, unreachableByKeyboard } from '../helpers/browser.ts';
import { api, cliAsync, inProcessServer, tempDir } from '../helpers/server.ts';

type Server = Awaited<ReturnType<typeof inProcessServer>>;
let server: Server;
let browser: BrowserContext;
let page: Page;
const keys = { network: '', auditor: '' };

const machines = { laptop: generateKeyPair(), phone: generateKeyPair(), web: generateKeyPair(), web2: generateKeyPair(), db: generateKeyPair() };
type Name = keyof typeof machines;
const ids = {} as Record<Name, number>;

const policy = `{
  "groups": { "group:eng": ["alice@"] },
  "tagOwners": { "tag:server": [], "tag:db": [] },
  "acls": [
    { "action": "accept", "src": ["group:eng"], "dst": ["tag:server:22,443"] },
    { "action": "accept", "src": ["bob@"], "dst": ["tag:server:443"] },
    { "action": "accept", "src": ["tag:server"], "dst": ["tag:db:5432"] },
    { "action": "accept", "src": ["group:eng"], "dst": ["tag:db:5432"], "proto": "tcp" },
  ],
  "ssh": [
    { "action": "check", "src": ["group:eng"], "dst": ["tag:server"], "users": ["deploy"], "checkPeriod": "1h" },
  ],
}
`;

const noise = (m: Name, path: string, method = 'GET', body = '') => noiseRequest(server.url, machines[m], path, method, body);
/** The request a destination's tailscaled makes when `src` opens an SSH session to it as deploy. */
const sshSession = (src: Name, dst: Name) => noise(dst, `/machine/ssh/action/from/${ids[src]}/to/${ids[dst]}?ssh_user=deploy&local_user=deploy`);

before(async () => {
  server = await inProcessServer();
  const t = server.tailnet;
  const alice = t.users.create({ name: 'alice' });
  const bob = t.users.create({ name: 'bob' });
  t.setPolicy(policy);
  const owner: Record<Name, { userId: number | null; tags: string[] }> = {
    laptop: { userId: alice.id, tags: [] },
    phone: { userId: bob.id, tags: [] },
    web: { userId: null, tags: ['tag:server'] },
    web2: { userId: null, tags: ['tag:server'] },
    db: { userId: null, tags: ['tag:db'] },
  };
  for (const name of Object.keys(machines) as Name[]) {
    const key = t.preAuthKeys.create(owner[name]).key;
    const body = JSON.stringify({ Version: 130, NodeKey: `nodekey:${randomBytes(32).toString('hex')}`, Auth: { AuthKey: key }, Hostinfo: { Hostname: name } });
    const r = await noise(name, '/machine/register', 'POST', body);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    ids[name] = t.nodes.list().find((n) => n.hostname === name)!.id;
  }
  keys.network = (await api(server, 'POST', '/api/v1/apikey', { role: 'network-admin' })).json.apiKey;
  keys.auditor = (await api(server, 'POST', '/api/v1/apikey', { role: 'auditor' })).json.apiKey;
  browser = await launchBrowser();
  page = browser.pages()[0] ?? (await browser.newPage());
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** `policy compile`'s summary of the live policy and tailnet, per node: accepts lines and ssh lines. */
async function compiledByCli(): Promise<Map<string, { accepts: string[]; ssh: string[] }>> {
  const dir = tempDir();
  const exported = await cliAsync(server, 'nodes', 'export');
  assert.equal(exported.status, 0, exported.stderr);
  const got = await cliAsync(server, 'policy', 'get');
  writeFileSync(join(dir, 'topology.json'), exported.stdout);
  writeFileSync(join(dir, 'policy.hujson'), got.stdout);
  const r = await cliAsync(server, 'policy', 'compile', '-f', join(dir, 'policy.hujson'), '--topology', join(dir, 'topology.json'));
  assert.equal(r.status, 0, r.stderr);
  const out = new Map<string, { accepts: string[]; ssh: string[] }>();
  let node: { accepts: string[]; ssh: string[] } | undefined;
  let section: 'accepts' | 'ssh' | undefined;
  for (const line of r.stdout.split('\n')) {
    const head = /^(\S+) \(id /.exec(line);
    if (head) out.set(head[1]!, (node = { accepts: [], ssh: [] }));
    else if (/^ {2}accepts:/.test(line)) section = 'accepts';
    else if (/^ {2}ssh:/.test(line)) section = 'ssh';
    else if (/^ {2}\S/.test(line)) section = undefined;
    else if (/^ {4}\S/.test(line) && section) node![section].push(line.trim());
  }
  return out;
}

/** Port lists merged as the page writes them: "22,443". */
const portList = (ports: Iterable<string>) => [...new Set(ports)].sort((a, b) => parseInt(a) - parseInt(b)).join(',');

/** From the CLI's accepts lines ("from laptop, phone to web:22, web:443 any"): "peer ports proto" rows, from `src`'s side or `dst`'s. */
function cliRows(cli: Map<string, { accepts: string[] }>, side: 'from' | 'to', name: string): string[] {
  const rows = new Map<string, Set<string>>();
  for (const [node, { accepts }] of cli) {
    for (const line of accepts) {
      const m = /^from (.+) to (.+) (\S+)$/.exec(line)!;
      const [srcs, dsts, proto] = [m[1]!.split(', '), m[2]!.split(', '), m[3]!];
      for (const d of dsts) {
        const [dst, ports] = [d.slice(0, d.lastIndexOf(':')), d.slice(d.lastIndexOf(':') + 1)];
        if (side === 'from' && srcs.includes(name) && dst !== name) rows.set(`${dst} | ${proto}`, new Set([...(rows.get(`${dst} | ${proto}`) ?? []), ports]));
        if (side === 'to' && node === name && dst === name) for (const s of srcs) rows.set(`${s} | ${proto}`, new Set([...(rows.get(`${s} | ${proto}`) ?? []), ports]));
      }
    }
  }
  return [...rows].map(([k, ports]) => { const [peer, proto] = k.split(' | '); return `${peer} ${portList(ports)} ${proto}`; }).sort();
}

/** A table of the reach page as "peer what how" rows (the machine column left out). */
async function pageRows(id: string): Promise<string[]> {
  if ((await page.locator(`table#${id}`).count()) === 0) return [];
  const rows = await page.locator(`#${id} tbody tr`).evaluateAll((trs) => trs.map((tr) => [...tr.children].slice(0, 3).map((c) => (c as HTMLElement).innerText.trim()).join(' ')));
  return rows.sort();
}

async function showReach(label: string): Promise<void> {
  await page.goto(`${server.url}/admin/acls`);
  await page.getByRole('link', { name: /What can a user, group, tag or machine reach/ }).click();
  await page.getByLabel('User, group, tag or machine').selectOption({ label });
  await page.getByRole('button', { name: 'Show access' }).click();
  await page.getByRole('heading', { level: 2, name: label }).waitFor();
}

test('reach view: a user and a machine, as the CLI compiles the same live policy', async () => {
  await logInConsole(page, server.url, keys.auditor); // every role may read it
  const cli = await compiledByCli();

  await showReach('alice');
  assert.match(await page.locator('#reach-machines').innerText(), /laptop/);
  const aliceReaches = await pageRows('reaches');
  assert.deepEqual(aliceReaches, ['db 5432 tcp', 'web 22,443 any', 'web2 22,443 any']);
  assert.deepEqual(aliceReaches, cliRows(cli, 'from', 'laptop'), 'the CLI says the same');
  assert.deepEqual(await pageRows('ssh-to'), ['web deploy check', 'web2 deploy check']);
  assert.deepEqual(await pageRows('reached-by'), [], 'nothing may connect to alice');

  await showReach('web');
  const webReachedBy = await pageRows('reached-by');
  assert.deepEqual(webReachedBy, ['laptop 22,443 any', 'phone 443 any']);
  assert.deepEqual(webReachedBy, cliRows(cli, 'to', 'web'), 'the CLI says the same');
  assert.deepEqual(await pageRows('reaches'), ['db 5432 any']);
  assert.deepEqual(await pageRows('reaches'), cliRows(cli, 'from', 'web'));
  assert.equal(cli.get('web')!.ssh.length, 1);
  assert.match(cli.get('web')!.ssh[0]!, /^check from laptop as .*\bdeploy$/, 'the CLI shows the same rule (with root mapped to no one)');
  assert.deepEqual(await pageRows('ssh-from'), ['laptop deploy check']);

  // A group and a tag stand for their machines.
  await showReach('tag:server');
  assert.match(await page.locator('#reach-machines').innerText(), /web, web2/);
  assert.deepEqual(await pageRows('reaches'), ['db 5432 any']);
  await page.goto(`${server.url}/admin/acls/reach?subject=group%3Aeng`);
  assert.deepEqual(await pageRows('reaches'), aliceReaches);
  // Unknown subjects are a clear 404, escaped.
  const res = await page.goto(`${server.url}/admin/acls/reach?subject=${encodeURIComponent('node:999')}`);
  assert.equal(res!.status(), 404);
  assert.match(await page.getByRole('alert').innerText(), /No user, group, tag or machine "node:999"/);
  const xss = '<img src=x onerror=alert(1)>';
  assert.equal((await page.goto(`${server.url}/admin/acls/reach?subject=${encodeURIComponent(xss)}`))!.status(), 404);
  assert.equal(await page.locator('main img').count(), 0, 'the reflected subject renders as text');
  assert.ok((await page.getByRole('alert').innerText()).includes(xss));

  await page.goto(`${server.url}/admin/acls/reach?subject=node%3A${ids.web}`);
  assert.deepEqual(await unreachableByKeyboard(page), [], 'every link and control of the reach view is reachable with Tab');
  assert.deepEqual(await seriousA11yViolations(page), [], 'axe: reach view');
  await page.getByRole('button', { name: 'Log out' }).click();
});

/** The id in a held session's answer, and the path the destination polls for the decision. */
function held(r: { status: number; json: any }): { id: string; wait: string } {
  assert.equal(r.status, 200);
  assert.ok(r.json.holdAndDelegate, JSON.stringify(r.json));
  const wait = new URL(r.json.holdAndDelegate).pathname;
  return { id: wait.split('/').pop()!, wait };
}

test('SSH checks: a held session shows up live, is approved from the page with the keyboard, and the session passes', async () => {
  await logInConsole(page, server.url, server.apiKey);
  await page.getByRole('link', { name: 'SSH checks' }).click();
  await page.getByRole('heading', { name: 'SSH checks' }).waitFor();
  assert.match(await page.locator('main').innerText(), /No SSH session is waiting/);
  await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));

  const check = held(await sshSession('laptop', 'web'));
  const row = page.locator('#pending-checks tbody tr', { hasText: 'web' });
  await row.waitFor({ timeout: 10_000 });
  assert.equal(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument), true, 'no reload');
  assert.match(await row.innerText(), /alice\s+laptop\s+web\s+deploy/);

  assert.deepEqual(await unreachableByKeyboard(page), [], 'every action of the SSH checks page is reachable with Tab');
  assert.deepEqual(await seriousA11yViolations(page), [], 'axe: SSH checks with a pending check');

  // The destination polls for the decision meanwhile, as tailscaled does.
  const answer = noise('web', check.wait);
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press('Tab');
    if ((await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))) === 'Approve alice as deploy on web') break;
  }
  await Promise.all([page.waitForResponse((r) => r.url().endsWith(`/admin/ssh/${check.id}/approve`)), page.keyboard.press('Enter')]);
  assert.match(await page.getByRole('status').first().innerText(), /SSH check approved: alice \(laptop\) as deploy on web, later sessions pass until/);
  assert.deepEqual((await answer).json.accept, true, 'the held session is let through');

  const [state] = (await api(server, 'GET', '/api/v1/ssh/checks')).json.checks.filter((c: { id: string }) => c.id === check.id);
  const prefix = server.tailnet.apiKeys.authenticate(server.apiKey)!.prefix;
  assert.equal(state.state, 'approved');
  assert.match(state.decidedBy, new RegExp(`^api-key:${prefix}.* \\(console\\)$`));
  const audit = (await api(server, 'GET', `/api/v1/audit?object=${encodeURIComponent(`ssh-check:${check.id}`)}`)).json.entries;
  const approval = audit.find((e: { action: string }) => e.action === 'ssh-check.approved');
  assert.ok(approval, JSON.stringify(audit));
  assert.equal(approval.door, 'console');
  assert.match(approval.actor, new RegExp(`^apikey:${prefix}`), 'the console user is the actor');
  assert.match(await page.locator('#decided-checks').innerText(), /approved\s+alice\s+laptop\s+web/);
  // Within the check period the next session of alice to web is not held.
  assert.equal((await sshSession('laptop', 'web')).json.accept, true);
  await page.getByRole('button', { name: 'Log out' }).click();
});

test('SSH checks: an auditor sees them without buttons and a forged POST is refused; a network-admin denies', async () => {
  const check = held(await sshSession('laptop', 'web2'));
  await logInConsole(page, server.url, keys.auditor);
  await page.goto(`${server.url}/admin/ssh`);
  assert.match(await page.locator('#pending-checks').innerText(), /alice\s+laptop\s+web2\s+deploy/);
  assert.match(await page.locator('main').innerText(), /auditor\) may see the checks but not decide them/);
  assert.equal(await page.getByRole('button', { name: /Approve|Deny/ }).count(), 0, 'no decision buttons for an auditor');
  assert.deepEqual(await seriousA11yViolations(page), [], 'axe: SSH checks, read-only');
  // Sent anyway, with the session's valid CSRF token, the approval is refused by the server.
  const csrf = await page.locator('form[action="/admin/logout"] input[name=_csrf]').inputValue();
  const forged = await page.request.post(`${server.url}/admin/ssh/${check.id}/approve`, { form: { _csrf: csrf }, maxRedirects: 0 });
  assert.equal(forged.status(), 403);
  assert.match(await forged.text(), /the auditor role may not change ssh-checks \(needs admin or network-admin\)/);
  const viaApi = await api({ url: server.url, apiKey: keys.auditor }, 'POST', `/api/v1/ssh/checks/${check.id}/approve`);
  assert.equal(viaApi.status, 403);
  assert.equal(server.tailnet.sshChecks.get(check.id)!.state, 'pending', 'still pending');
  await page.getByRole('button', { name: 'Log out' }).click();

  await logInConsole(page, server.url, keys.network);
  await page.goto(`${server.url}/admin/ssh`);
  await page.getByRole('button', { name: 'Deny alice as deploy on web2' }).click();
  assert.match(await page.getByRole('status').first().innerText(), /SSH check denied/);
  assert.equal(server.tailnet.sshChecks.get(check.id)!.state, 'denied');
  assert.match(await page.locator('#decided-checks').innerText(), /denied\s+alice\s+laptop\s+web2/);
  const again = held(await sshSession('laptop', 'web2'));
  // The API enforces the same role: a network-admin key may decide checks there too.
  const viaNetworkAdmin = await api({ url: server.url, apiKey: keys.network }, 'POST', `/api/v1/ssh/checks/${again.id}/deny`);
  assert.equal(viaNetworkAdmin.status, 200, JSON.stringify(viaNetworkAdmin.json));
  assert.equal(viaNetworkAdmin.json.check.state, 'denied');
});
