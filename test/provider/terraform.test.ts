/**
 * End to end with a real terraform binary: the provider installed into an offline filesystem mirror drives a
 * real tailplane server through init, apply, plan, drift, restore, plan-time policy errors, import and destroy.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { installProvider } from '../../provider/install.ts';
import { samePolicy } from '../../provider/src/resources/policy.ts';
import { api, spawnServer, tempDir, type ChildServer } from '../helpers/server.ts';

/** terraform from the PATH, or OpenTofu when test/run.js sets TERRAFORM_BINARY_NAME. */
const terraformBin = process.env.TERRAFORM_BINARY_NAME ?? 'terraform';
const product = basename(terraformBin).startsWith('tofu') ? 'OpenTofu' : 'Terraform';
const haveTerraform = spawnSync(terraformBin, ['version'], { encoding: 'utf8' }).status === 0;

const policyText = `{
  // Everyone may reach everything.
  "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]},],
}`;

function config(server: ChildServer, opts: { policy?: string; aliceName?: string; aliceDisplayName?: string; extra?: string } = {}): string {
  return `
terraform {
  required_providers {
    tailplane = { source = "terraform.local/tailplane/tailplane", version = "0.1.0" }
  }
}

# The API key comes from $TAILPLANE_API_KEY.
provider "tailplane" {
  server_url = "${server.url}"
}

resource "tailplane_user" "alice" {
  name         = "${opts.aliceName ?? 'alice'}"
  display_name = "${opts.aliceDisplayName ?? 'Alice'}"
  email        = "alice@example.com"
}

resource "tailplane_preauth_key" "ci" {
  user     = tailplane_user.alice.id
  reusable = true
  tags     = []
}

resource "tailplane_policy" "main" {
  policy = ${JSON.stringify(opts.policy ?? policyText)}
}

resource "tailplane_dns" "main" {
  magic_dns   = true
  nameservers = ["1.1.1.1"]
  split_dns   = { "corp.example" = ["10.0.0.53"] }
}

data "tailplane_users" "alice" {
  name       = tailplane_user.alice.name
}

output "alice_id" {
  value = data.tailplane_users.alice.users[0].id
}
${opts.extra ?? ''}
`;
}

interface Run {
  status: number | null;
  out: string;
}

let server: ChildServer;
let work: string;
let env: NodeJS.ProcessEnv;

/**
 * Runs terraform with a time limit; throws with its whole output unless the exit status is the expected one.
 * Asynchronous so this process keeps serving its sockets (a blocked event loop leaves stale keep-alive connections).
 */
function tf(args: string[], expect: number | null = 0): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(terraformBin, [...args, '-no-color'], { cwd: work, env, encoding: 'utf8', timeout: 180_000 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      const out = `${stdout}${stderr}`;
      if (expect !== null && status !== expect) {
        reject(new Error(`terraform ${args.join(' ')} exited ${status ?? err?.signal} (expected ${expect}):\n${out}`));
      } else resolve({ status, out });
    });
  });
}

function writeConfig(text: string): void {
  writeFileSync(join(work, 'main.tf'), text);
}

const skip = haveTerraform ? false : `no ${terraformBin} on the PATH`;

before(async () => {
  if (!haveTerraform) return;
  // The embedded DERP/STUN relay binds a fixed UDP port that parallel tests share; terraform does not need it.
  server = await spawnServer({ env: { TAILPLANE_DERP_ENABLED: 'false' } });
  const inst = installProvider(tempDir('tailplane-tf-mirror-'));
  work = tempDir('tailplane-tf-work-');
  env = {
    ...process.env,
    TF_CLI_CONFIG_FILE: inst.cliConfig,
    TF_IN_AUTOMATION: '1',
    TF_INPUT: '0',
    CHECKPOINT_DISABLE: '1',
    TAILPLANE_API_KEY: server.apiKey,
  };
  delete env.TF_PLUGIN_CACHE_DIR;
  delete env.TF_LOG;
});

after(async () => {
  await server?.stop();
});

const state = {
  originalDns: undefined as unknown,
  originalPolicy: '',
};

test('init installs the provider from the offline mirror', { skip }, async () => {
  state.originalDns = (await api(server, 'GET', '/api/v1/dns')).json.dns;
  state.originalPolicy = (await api(server, 'GET', '/api/v1/policy')).json.policy;
  // An object terraform does not manage, which destroy must leave alone.
  assert.equal((await api(server, 'POST', '/api/v1/user', { name: 'carol' })).status, 200);
  writeConfig(config(server));
  const r = await tf(['init', '-input=false']);
  assert.match(r.out, /terraform\.local\/tailplane\/tailplane/);
  assert.match(r.out, new RegExp(`${product} has been successfully initialized`));
});

test('apply creates the user, the pre-auth key, the policy and the DNS settings', { skip }, async () => {
  const r = await tf(['apply', '-auto-approve', '-input=false']);
  assert.match(r.out, /Apply complete! Resources: 4 added, 0 changed, 0 destroyed/);
  const users = (await api(server, 'GET', '/api/v1/user?name=alice')).json.users;
  assert.equal(users.length, 1);
  assert.equal(users[0].displayName, 'Alice');
  assert.equal(users[0].email, 'alice@example.com');
  assert.match(r.out, new RegExp(`alice_id = "${users[0].id}"`));
  const keys = (await api(server, 'GET', '/api/v1/preauthkey')).json.preAuthKeys;
  assert.equal(keys.length, 1);
  assert.equal(keys[0].user.name, 'alice');
  assert.equal(keys[0].reusable, true);
  const policy = (await api(server, 'GET', '/api/v1/policy')).json.policy;
  assert.ok(samePolicy(policy, policyText), policy);
  const dns = (await api(server, 'GET', '/api/v1/dns')).json.dns;
  assert.deepEqual(dns.nameservers, ['1.1.1.1']);
  assert.deepEqual(dns.splitDns, { 'corp.example': ['10.0.0.53'] });
  assert.equal(dns.magicDns, true);
  // The audit log names the provider as the door of every change it made.
  const audit = (await api(server, 'GET', `/api/v1/audit?object=user:${users[0].id}`)).json.entries;
  assert.deepEqual(audit.map((e: { door: string; action: string }) => [e.door, e.action]), [['terraform', 'user.create']]);
});

test('a second plan has nothing to do', { skip }, async () => {
  await tf(['plan', '-detailed-exitcode', '-input=false'], 0);
});

test('a change by hand shows as drift in a refresh-only plan, and apply restores the configuration', { skip }, async () => {
  const dns = (await api(server, 'GET', '/api/v1/dns')).json.dns;
  assert.equal((await api(server, 'PUT', '/api/v1/dns', { ...dns, nameservers: ['9.9.9.9'] })).status, 200);
  const drift = await tf(['plan', '-refresh-only', '-detailed-exitcode', '-input=false'], 2);
  assert.match(drift.out, /tailplane_dns\.main has changed/);
  assert.match(drift.out, /nameservers/);
  // Terraform prints a list element change as `"a" -> "b"`, OpenTofu 1.6 as `- "a",` then `+ "b",`.
  assert.match(drift.out, /"1\.1\.1\.1" -> "9\.9\.9\.9"|- "1\.1\.1\.1",\s+\+ "9\.9\.9\.9",/);
  const fix = await tf(['apply', '-auto-approve', '-input=false']);
  assert.match(fix.out, /0 added, 1 changed, 0 destroyed/);
  assert.deepEqual((await api(server, 'GET', '/api/v1/dns')).json.dns.nameservers, ['1.1.1.1']);
  await tf(['plan', '-detailed-exitcode', '-input=false'], 0);
});

test('a policy that differs only in formatting is no drift and no change', { skip }, async () => {
  const compact = JSON.stringify({ acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] });
  assert.equal((await api(server, 'PUT', '/api/v1/policy', { policy: compact })).status, 200);
  await tf(['plan', '-refresh-only', '-detailed-exitcode', '-input=false'], 0);
  writeConfig(config(server, { policy: `// reformatted\n${compact}\n` }));
  await tf(['plan', '-detailed-exitcode', '-input=false'], 0);
  writeConfig(config(server));
});

test('a policy with a syntax error fails at plan with the server\'s message', { skip }, async () => {
  writeConfig(config(server, { policy: '{"acls": [ oops ]' }));
  const r = await tf(['plan', '-input=false'], 1);
  assert.match(r.out, /Error: Invalid policy/);
  assert.match(r.out, /policy refused/);
  assert.match(r.out, /tailplane_policy\.main/);
  writeConfig(config(server));
});

test('user changes (a new name, a new display name) are made in place', { skip }, async () => {
  const before = (await api(server, 'GET', '/api/v1/user?name=alice')).json.users[0];
  writeConfig(config(server, { aliceName: 'alice2' }));
  const r = await tf(['apply', '-auto-approve', '-input=false']);
  assert.match(r.out, /update in-place/);
  assert.match(r.out, /0 added, 1 changed, 0 destroyed/);
  const after = (await api(server, 'GET', '/api/v1/user?name=alice2')).json.users[0];
  assert.equal(after.id, before.id);

  writeConfig(config(server, { aliceName: 'alice2', aliceDisplayName: 'Alice Two' }));
  const profile = await tf(['apply', '-auto-approve', '-input=false']);
  assert.match(profile.out, /0 added, 1 changed, 0 destroyed/);
  const updated = (await api(server, 'GET', '/api/v1/user?name=alice2')).json.users[0];
  assert.equal(updated.id, before.id);
  assert.equal(updated.displayName, 'Alice Two');
});

test('import adopts an existing user by name', { skip }, async () => {
  assert.equal((await api(server, 'POST', '/api/v1/user', { name: 'dave', displayName: 'Dave' })).status, 200);
  const extra = `resource "tailplane_user" "dave" {\n  name         = "dave"\n  display_name = "Dave"\n}\n`;
  writeConfig(config(server, { aliceName: 'alice2', aliceDisplayName: 'Alice Two', extra }));
  const r = await tf(['import', '-input=false', 'tailplane_user.dave', 'dave']);
  assert.match(r.out, /Import successful/);
  await tf(['plan', '-detailed-exitcode', '-input=false'], 0);
});

test('a user renamed by hand and back: its pre-auth key, given by name, is never replaced', { skip }, async () => {
  const base = { aliceName: 'alice2', aliceDisplayName: 'Alice Two' };
  const dave = `resource "tailplane_user" "dave" {\n  name         = "dave"\n  display_name = "Dave"\n}\n`;
  const uzo = `resource "tailplane_user" "uzo" {\n  name = "uzo"\n}\nresource "tailplane_preauth_key" "uzo" {\n  user       = "uzo"\n  reusable   = true\n  depends_on = [tailplane_user.uzo]\n}\n`;
  writeConfig(config(server, { ...base, extra: dave + uzo }));
  await tf(['apply', '-auto-approve', '-input=false']);
  const keyOf = async () => (await api(server, 'GET', '/api/v1/preauthkey')).json.preAuthKeys.find((k: { user: { name: string } | null }) => k.user?.name.startsWith('uzo'));
  const key = await keyOf();
  const user = (await api(server, 'GET', '/api/v1/user?name=uzo')).json.users[0];

  assert.equal((await api(server, 'POST', `/api/v1/user/${user.id}/rename/uzo-tmp`)).status, 200);
  const drift = await tf(['plan', '-refresh-only', '-detailed-exitcode', '-input=false'], 2);
  assert.match(drift.out, /tailplane_user\.uzo has changed/);
  assert.doesNotMatch(drift.out, /tailplane_preauth_key\.uzo has changed/, 'the key did not change: its user was renamed');
  const plan = await tf(['plan', '-input=false'], 0);
  assert.doesNotMatch(plan.out, /must be replaced|forces replacement/);
  assert.equal((await api(server, 'POST', `/api/v1/user/${user.id}/rename/uzo`)).status, 200);
  await tf(['plan', '-detailed-exitcode', '-input=false'], 0);
  await tf(['apply', '-auto-approve', '-input=false']);
  assert.equal((await keyOf()).id, key.id, 'the same key');

  writeConfig(config(server, { ...base, extra: dave }));
  await tf(['apply', '-auto-approve', '-input=false']);
});

test('destroy removes what terraform manages and restores the singletons', { skip }, async () => {
  const r = await tf(['destroy', '-auto-approve', '-input=false']);
  assert.match(r.out, /Destroy complete! Resources: 5 destroyed/);
  const names = (await api(server, 'GET', '/api/v1/user')).json.users.map((u: { name: string }) => u.name);
  assert.deepEqual(names, ['carol']);
  assert.deepEqual((await api(server, 'GET', '/api/v1/preauthkey')).json.preAuthKeys, []);
  assert.deepEqual((await api(server, 'GET', '/api/v1/dns')).json.dns, state.originalDns);
  const policy = (await api(server, 'GET', '/api/v1/policy')).json.policy;
  // There was no policy before; the server cannot delete one, so the provider leaves the allow-all default.
  assert.ok(state.originalPolicy === '' ? samePolicy(policy, '{"acls":[{"action":"accept","src":["*"],"dst":["*:*"]}]}') : policy === state.originalPolicy);
});
