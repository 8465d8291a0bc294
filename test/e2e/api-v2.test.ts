/**
 * API v2 proven with Tailscale's own Go client (tailscale.com/client/tailscale/v2, built from the module proxy
 * as test/peers/apiv2probe) against a live server and real tailscaled (v1.102.5): an auth key made through
 * the API joins a daemon, which is then found, tagged, routed, renamed and deleted; DNS and the policy (with
 * ETags) are read and written — once with an API key, once with an OAuth client made by the CLI, and a
 * client lacking a scope is refused. Also: bad input is a 400 with a message, the README's curl example
 * works, and PUT /api/v1/policy's If-Match guards the engine's apply and the provider's writes.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { createAdminClient } from '../../src/client/admin-client.ts';
import { applyPlan, planChanges, readLive } from '../../src/engine/index.ts';
import type { DesiredState } from '../../src/engine/desired.ts';
import { createTailnetApi } from '../../provider/src/tailnet-api.ts';
import { policyResource } from '../../provider/src/resources/policy.ts';
import { createHarness, type Daemon, type Harness } from '../harness/tailscaled.ts';
import { withLogs } from '../helpers/failure.ts';
import { api, cli, spawnServer, type ChildServer } from '../helpers/server.ts';
import { peerProgram } from '../peers/build.ts';

const run = promisify(execFile);
let harness: Harness;
const route = '10.77.0.0/24';
const policy = `{
  "tagOwners": { "tag:probe": ["alice@example.com"], "tag:probe2": ["alice@example.com"] },
  "acls": [{ "action": "accept", "src": ["*"], "dst": ["*:*"] }],
}`;
const serverEnv = { TAILPLANE_DNS_BASE_DOMAIN: 'tail.example' };
let server: ChildServer;
let probe: string;

interface Step {
  step: string;
  wait: boolean;
  authKey?: string;
  id?: string;
}

/**
 * Runs the probe; `onStep` handles each step it reports (and, for a waiting step, the probe resumes once
 * `onStep` has finished). Resolves with the exit code, the steps and stderr.
 */
function runProbe(args: string[], onStep: (s: Step) => Promise<void> = async () => {}) {
  const child = spawn(probe, ['-url', server.url, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const steps: Step[] = [];
  let handling = Promise.resolve();
  let failure: unknown;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const step = JSON.parse(line) as Step;
    steps.push(step);
    handling = handling
      .then(() => onStep(step))
      .then(() => void (step.wait && child.stdin.write('ok\n')))
      .catch((err) => {
        failure = err;
        child.kill();
      });
  });
  const timer = setTimeout(() => child.kill(), 240_000);
  return new Promise<{ code: number | null; steps: Step[]; stderr: string }>((resolve, reject) =>
    child.once('close', async (code) => {
      clearTimeout(timer);
      await handling;
      if (failure) reject(failure);
      else resolve({ code, steps: steps, stderr });
    })
  );
}

const node = async (id: string) => api(server, 'GET', `/api/v1/node/${id}`);

/** The full probe: join `daemon` with the key the probe made, check each step's effect on the daemon and the server. */
async function fullRun(daemon: Daemon, hostname: string, credentials: string[]): Promise<void> {
  const seen: string[] = [];
  const r = await runProbe([...credentials, '-hostname', hostname, '-route', route], async (s) => {
    seen.push(s.step);
    if (s.step === 'join') {
      assert.match(s.authKey!, /^tpkey-auth-/);
      const up = await daemon.up({ loginServer: server.url, authKey: s.authKey, hostname, extraArgs: [`--advertise-routes=${route}`] });
      assert.equal(up.code, 0, `tailscale up: ${up.stderr}${up.stdout}`);
      await daemon.waitFor(
        async () =>
          (await api(server, 'GET', '/api/v1/node')).json.nodes.some((n: any) => n.name === hostname && n.availableRoutes.length === 1),
        20_000,
        'the advertised route reaches the server'
      );
    }
    if (s.step === 'device') {
      const n = (await node(s.id!)).json.node;
      assert.deepEqual(
        [n.givenName, n.tags, n.approvedRoutes, n.expiry],
        [`${hostname}-renamed`, ['tag:probe', 'tag:probe2'], [route], null]
      );
      // The daemon itself hears of the new tags and name through its map stream.
      await daemon.waitFor(
        async () => {
          const self = (await daemon.status()).Self as { Tags?: string[]; DNSName?: string };
          return self.Tags?.includes('tag:probe2') && self.DNSName?.startsWith(`${hostname}-renamed.`);
        },
        20_000,
        'tags and name in tailscale status'
      );
    }
    if (s.step === 'dns') {
      const dns = (await api(server, 'GET', '/api/v1/dns')).json.dns;
      assert.deepEqual(
        [dns.nameservers, dns.searchDomains, dns.splitDns, dns.magicDns],
        [['9.9.9.9', '1.1.1.1'], ['corp.example'], { 'b.example': ['10.0.0.54'] }, true]
      );
    }
  });
  assert.equal(r.code, 0, `apiv2probe failed: ${r.stderr}`);
  assert.deepEqual(seen, ['join', 'device', 'dns', 'done']);
  const id = r.steps.find((s) => s.step === 'device')!.id!;
  assert.equal((await node(id)).status, 404, 'the device deleted through API v2 is gone');
  // Put back the test's own policy for the next run (the probe wrote its own).
  assert.equal((await api(server, 'PUT', '/api/v1/policy', { policy })).status, 200);
}

before(async () => {
  probe = await peerProgram('apiv2probe');
  harness = createHarness();
  server = await spawnServer({ env: serverEnv });
  assert.equal((await api(server, 'POST', '/api/v1/user', { name: 'alice', email: 'alice@example.com' })).status, 200);
  // "ts-default" (unquoted here) matches only while no policy was ever set: the first write lands, a second is a 412.
  const basic = {
    authorization: `Basic ${Buffer.from(`${server.apiKey}:`).toString('base64')}`,
    'content-type': 'application/hujson',
    'if-match': 'ts-default',
  };
  assert.equal((await api(server, 'POST', '/api/v2/tailnet/-/acl', policy, basic)).status, 200);
  assert.equal((await api(server, 'POST', '/api/v2/tailnet/-/acl', policy, basic)).status, 412);
});

after(async () => {
  await harness?.cleanup();
  await server?.stop();
});

test('the Go client with an API key drives every endpoint against a joined tailscaled', async () => {
  const daemon = await harness.start({ name: 'bykey' });
  await withLogs(
    harness,
    () => server.log(),
    'api key',
    () => fullRun(daemon, 'probe-key', ['-key', server.apiKey])
  );
});

test('the Go client with an OAuth client from `tailplane oauth-clients create` does the same; its secret is stored hashed', async () => {
  const created = cli(
    server,
    'oauth-clients',
    'create',
    '--scopes',
    'devices:core,devices:routes,dns,policy_file,auth_keys,users:read',
    '-o',
    'json'
  );
  assert.equal(created.status, 0, created.stderr);
  const { clientId, clientSecret } = JSON.parse(created.stdout);
  assert.match(clientSecret, new RegExp(`^tpkey-client-${clientId}-`));
  const daemon = await harness.start({ name: 'byoauth' });
  await withLogs(
    harness,
    () => server.log(),
    'oauth',
    () => fullRun(daemon, 'probe-oauth', ['-client-id', clientId, '-client-secret', clientSecret])
  );
  // The whole random part (base64url, which may hold "-"): a fragment after the last "-" could be a few
  // characters, and found in the database file by chance.
  const secretPart = clientSecret.slice(`tpkey-client-${clientId}-`.length);
  assert.equal(secretPart.length, 32);
  for (const f of readdirSync(server.dataDir).filter((f) => f.includes('.db') || f.includes('sqlite'))) {
    assert.ok(!readFileSync(join(server.dataDir, f)).includes(secretPart), `the client secret is not stored in ${f}`);
  }
  assert.match(
    cli(server, 'oauth-clients', 'list').stdout,
    new RegExp(`${clientId}\\s+devices:core,devices:routes,dns,policy_file,auth_keys,users:read`)
  );
});

test('an OAuth client is held to its scopes: reads allowed, writes and ungranted scopes refused', async () => {
  const created = cli(server, 'oauth-clients', 'create', '--scopes', 'devices:core:read', '-o', 'json');
  assert.equal(created.status, 0, created.stderr);
  const { id, clientId, clientSecret } = JSON.parse(created.stdout);
  const r = await runProbe(['-mode', 'refused', '-client-id', clientId, '-client-secret', clientSecret]);
  assert.equal(r.code, 0, `apiv2probe -mode refused failed: ${r.stderr}`);
  // A token outlives a restart (it is stored, hashed); deleting the client revokes the client and its tokens.
  const tokenOf = () =>
    fetch(`${server.url}/api/v2/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }),
    });
  const { access_token: token, scope } = await (await tokenOf()).json();
  assert.equal(scope, 'devices:core:read');
  await server.stop();
  server = await spawnServer({ dataDir: server.dataDir, env: serverEnv });
  const bearer = { authorization: `Bearer ${token}` };
  assert.equal((await api(server, 'GET', '/api/v2/tailnet/-/devices', undefined, bearer)).status, 200, 'the token works after a restart');
  assert.equal(cli(server, 'oauth-clients', 'delete', id).status, 0);
  assert.equal((await api(server, 'GET', '/api/v2/tailnet/-/devices', undefined, bearer)).status, 401, 'its token is revoked');
  const again = await tokenOf();
  assert.equal(again.status, 401);
  assert.equal((await again.json()).error, 'invalid_client');
});

test("README's curl example works, and bad input is a 400 with a message (never a 500)", async () => {
  const { stdout } = await run('curl', ['-sS', '-u', `${server.apiKey}:`, `${server.url}/api/v2/tailnet/-/devices`]);
  assert.ok(Array.isArray(JSON.parse(stdout).devices), stdout);
  const basic = { authorization: `Basic ${Buffer.from(`${server.apiKey}:`).toString('base64')}` };
  const bad: [string, string, unknown][] = [
    ['POST', '/api/v2/tailnet/-/keys', { capabilities: { devices: { create: { tags: ['tag:probe'] } } }, colour: 'red' }],
    ['POST', '/api/v2/tailnet/-/keys', { capabilities: { devices: { create: { tags: 'tag:probe' } } } }],
    ['POST', '/api/v2/tailnet/-/keys', { expirySeconds: -1 }],
    ['POST', '/api/v2/tailnet/-/dns/preferences', { magicDNS: 'yes' }],
    ['PUT', '/api/v2/tailnet/-/dns/split-dns', { 'a.example': '10.0.0.1' }],
    ['POST', '/api/v2/tailnet/-/dns/searchpaths', { searchPaths: ['not a name'] }],
    ['POST', '/api/v2/tailnet/-/acl', '{"acls": [ oops ]}'],
    ['POST', '/api/v2/tailnet/-/acl', '{"acls": [], "bogus": 1}'],
    ['GET', '/api/v2/tailnet/-/devices?colour=red', undefined],
    ['POST', '/api/v2/tailnet/-/dns/nameservers', '{"dns": [1,'],
  ];
  for (const [method, path, body] of bad) {
    const r = await api(server, method, path, body, basic);
    assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.json)}`);
    assert.equal(typeof r.json.message, 'string', `${method} ${path}: a message`);
  }
  assert.equal(
    (await api(server, 'GET', '/api/v2/tailnet/example.com/devices', undefined, basic)).status,
    404,
    'only the "-" tailnet exists'
  );
  assert.equal((await api(server, 'GET', '/api/v2/tailnet/-/devices', undefined, { authorization: 'Basic Zm9vOg==' })).status, 401);
});

test("an API key's role bounds what it may do on v2 as on v1: an auditor reads, a network-admin writes DNS, not keys", async () => {
  const keyOf = (role: string) => {
    const r = cli(server, 'apikeys', 'create', '--role', role);
    assert.equal(r.status, 0, r.stderr);
    return { authorization: `Basic ${Buffer.from(`${r.stdout.trim()}:`).toString('base64')}` };
  };
  const auditor = keyOf('auditor');
  assert.equal((await api(server, 'GET', '/api/v2/tailnet/-/devices', undefined, auditor)).status, 200, 'every role reads');
  const acl = await api(server, 'GET', '/api/v2/tailnet/-/acl', undefined, auditor);
  assert.equal(acl.status, 200);
  const refused = await api(server, 'POST', '/api/v2/tailnet/-/acl', JSON.stringify(acl.json), auditor);
  assert.equal(refused.status, 403, JSON.stringify(refused.json));
  assert.match(refused.json.message, /policy_file/);
  const network = keyOf('network-admin');
  const searchPaths = await api(server, 'GET', '/api/v2/tailnet/-/dns/searchpaths', undefined, network);
  assert.equal((await api(server, 'POST', '/api/v2/tailnet/-/dns/searchpaths', searchPaths.json, network)).status, 200);
  const key = await api(server, 'POST', '/api/v2/tailnet/-/keys', { capabilities: { devices: { create: { tags: ['tag:probe'] } } } }, network);
  assert.equal(key.status, 403, 'auth keys belong to it-admin');
});

test('PUT /api/v1/policy takes If-Match: a stale ETag is a 412, and neither the engine nor the provider overwrites an unseen edit', async () => {
  const first = await api(server, 'GET', '/api/v1/policy');
  const etag = first.json.etag as string;
  assert.match(etag, /^"[0-9a-f]{32}"$/);
  const edited = policy.replace('"acls"', '// edited by someone else\n  "hosts": { "printer": "10.1.2.3" },\n  "acls"');
  const put = await api(server, 'PUT', '/api/v1/policy', { policy: edited }, { 'if-match': etag });
  assert.equal(put.status, 200, JSON.stringify(put.json));
  assert.notEqual(put.json.etag, etag);
  const unquoted = await api(server, 'PUT', '/api/v1/policy', { policy: edited }, { 'if-match': put.json.etag.slice(1, -1) });
  assert.equal(unquoted.status, 200, 'an unquoted ETag matches too');
  const stale = await api(server, 'PUT', '/api/v1/policy', { policy }, { 'if-match': etag });
  assert.equal(stale.status, 412);
  assert.match(stale.json.message, /changed since you read it/);
  assert.equal((await api(server, 'GET', '/api/v1/policy')).json.policy, edited, 'the stale write changed nothing');

  // The engine: a plan made before someone else's edit does not overwrite it.
  const client = createAdminClient({ url: server.url, apiKey: server.apiKey });
  const desired: DesiredState = {
    tags: { 'tag:probe': ['alice@example.com'] },
    acls: [{ action: 'accept', src: ['alice@example.com'], dst: ['*:22'] }],
  };
  const plan = planChanges(desired, await readLive(client));
  assert.ok(
    plan.changes.some((c) => c.kind === 'policy'),
    'the plan writes the policy'
  );
  assert.equal((await api(server, 'PUT', '/api/v1/policy', { policy })).status, 200, 'someone else edits after the plan');
  const result = await applyPlan(client, plan);
  assert.match(result.failed?.error ?? '', /changed by someone else since this plan was made/);
  assert.equal((await api(server, 'GET', '/api/v1/policy')).json.policy, policy);
  await client.close();

  // The provider: an update over a policy Terraform has not refreshed is refused.
  const provider = createTailnetApi({ url: server.url, apiKey: server.apiKey });
  await assert.rejects(
    policyResource().update(provider, { id: 'policy', policy: edited }, { id: 'policy', policy: edited + '\n' }),
    /changed outside Terraform/
  );
  await policyResource().update(provider, { id: 'policy', policy }, { id: 'policy', policy: edited });
  assert.equal((await api(server, 'GET', '/api/v1/policy')).json.policy, edited, 'an update over the refreshed policy lands');
  await provider.close();
});
