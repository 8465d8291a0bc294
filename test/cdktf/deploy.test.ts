/**
 * `cdktf deploy` from CI, end to end: the project's own cdktf app (stacks/main.ts, the healthcare example) deployed
 * with cdktf-cli 0.21 and the terraform on the PATH through the offline provider mirror, against a real server, with
 * a real tailscaled that the stack itself enrolls. Then drift by hand, restore, a plan-time policy failure, destroy.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { installProvider } from '../../provider/install.ts';
import { createHarness, type Daemon } from '../harness/tailscaled.ts';
import { peerBinaries } from '../peers/build.ts';
import { api, cli, repoRoot, spawnServer, tempDir, type ChildServer } from '../helpers/server.ts';

/** terraform from the PATH, or OpenTofu when test/run.js sets TERRAFORM_BINARY_NAME (cdktf reads it too). */
const terraformBin = process.env.TERRAFORM_BINARY_NAME ?? 'terraform';
const product = basename(terraformBin).startsWith('tofu') ? 'OpenTofu' : 'Terraform';
const skip = spawnSync(terraformBin, ['version']).status === 0 ? false : `no ${terraformBin} on the PATH`;
const cdktfCli = join(repoRoot, 'node_modules', '.bin', 'cdktf');
const stackDir = () => join(project, 'cdktf.out', 'stacks', 'healthcare');

/** A policy in place before the stack, which destroy must bring back. */
const initialPolicy = `// before the stack\n{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}\n`;

const harness = createHarness();
let server: ChildServer;
let router: Daemon;
let project: string;
let env: NodeJS.ProcessEnv;
const before_ = { dns: undefined as unknown };

interface Run {
  status: number | null;
  out: string;
}

/** Runs a command in the cdktf project (or a stack dir) without blocking the event loop; checks its exit status. */
function run(cmd: string, args: string[], expect: number | null, cwd = project): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env, encoding: 'utf8', timeout: 420_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      const out = `${stdout}${stderr}`;
      if (expect !== null && status !== expect) reject(new Error(`${cmd} ${args.join(' ')} exited ${status ?? err?.signal} (expected ${expect}):\n${out}`));
      else resolve({ status, out });
    });
  });
}

const cdktf = (args: string[], expect: number | null = 0) => run(cdktfCli, [...args, 'healthcare', '--skip-provider-lock'], expect);

/** The repository's cdktf.json in a temp project, its app one of this checkout's cdktf programs. */
function writeCdktfJson(app: string): void {
  const tsx = import.meta.resolve('tsx');
  const config = JSON.parse(readFileSync(join(repoRoot, 'cdktf.json'), 'utf8'));
  writeFileSync(join(project, 'cdktf.json'), JSON.stringify({ ...config, app: `${process.execPath} --import ${tsx} ${join(repoRoot, app)}` }, null, 2));
}

const git = (...args: string[]) => spawnSync('git', args, { cwd: project, encoding: 'utf8' });

async function routerNode() {
  const nodes = (await api(server, 'GET', '/api/v1/node')).json.nodes as any[];
  return nodes.find((n) => n.name === 'clinic-router');
}

before(async () => {
  if (skip) return;
  server = await spawnServer();
  router = await harness.start({ name: 'router' });
  project = tempDir('tailplane-cdktf-');
  writeCdktfJson('stacks/main.ts');
  // A git work tree with the repository's .gitignore: deploy must leave it clean (no state, no cdktf.json edit).
  copyFileSync(join(repoRoot, '.gitignore'), join(project, '.gitignore'));
  git('init', '-q');
  git('add', '.gitignore', 'cdktf.json');
  const inst = installProvider(join(project, 'terraform'));
  writeFileSync(join(project, '.git', 'info', 'exclude'), '/terraform/\n');
  env = {
    ...process.env,
    TF_CLI_CONFIG_FILE: inst.cliConfig,
    TAILPLANE_URL: server.url,
    TAILPLANE_API_KEY: server.apiKey,
    // The stack's enrolment command drives this test's tailscaled.
    TAILSCALE_BIN: `${peerBinaries().tailscale} --socket=${router.socket}`,
    CI: '1',
    CHECKPOINT_DISABLE: '1',
    DISABLE_VERSION_CHECK: '1',
    FORCE_COLOR: '0',
    CDKTF_DISABLE_PLUGIN_CACHE_ENV: '1',
    TF_IN_AUTOMATION: '1',
  };
  delete env.TF_PLUGIN_CACHE_DIR;
  delete env.TF_LOG;
  // Objects the stack does not own, which destroy must leave alone.
  const carol = await api(server, 'POST', '/api/v1/user', { name: 'carol' });
  assert.equal(carol.status, 200);
  assert.equal((await api(server, 'POST', '/api/v1/preauthkey', { user: carol.json.user.id, reusable: true })).status, 200);
  assert.equal((await api(server, 'PUT', '/api/v1/policy', { policy: initialPolicy })).status, 200);
  before_.dns = (await api(server, 'GET', '/api/v1/dns')).json.dns;
});

after(async () => {
  await harness.cleanup();
  await server?.stop();
});

test('cdktf deploy creates the users, tags, policy, DNS and routes, and enrolls the router with its tags', { skip, timeout: 600_000 }, async () => {
  const r = await cdktf(['deploy', '--auto-approve']);
  assert.match(r.out, new RegExp(`${product} has been successfully initialized`));
  assert.match(r.out, /Apply complete! Resources: 9 added, 0 changed, 0 destroyed/);

  const users = ((await api(server, 'GET', '/api/v1/user')).json.users as any[]).map((u) => u.name).sort();
  assert.deepEqual(users, ['carol', 'emeka', 'ngozi', 'uzo']);
  const policy = (await api(server, 'GET', '/api/v1/policy')).json.policy as string;
  assert.match(policy, /"group:operationadmins": \["ngozi@", "emeka@"\]/);
  assert.match(policy, /"tag:router": \["group:operationadmins"\]/);
  const dns = (await api(server, 'GET', '/api/v1/dns')).json.dns;
  assert.equal(dns.baseDomain, 'clinic.tailnet.internal');
  assert.deepEqual(dns.splitDns, { 'clinic.lan': ['10.20.0.53'] });

  const node = await routerNode();
  assert.ok(node, 'the enrolled router is registered');
  assert.deepEqual(node.tags, ['tag:router']);
  assert.deepEqual(node.approvedRoutes, ['10.20.0.0/16']);
  assert.equal(node.expiry, null);
  const routes = cli(server, 'routes', 'list', '-o', 'json');
  assert.equal(routes.status, 0, routes.stderr);
  const route = (JSON.parse(routes.stdout) as any[]).find((x) => x.prefix === '10.20.0.0/16');
  assert.deepEqual(route?.routers.map((x: any) => [x.nodeId, x.approved, x.primary]), [[node.id, true, true]], routes.stdout);

  // The machine itself is up, tagged, and knows its address.
  const status = await router.status();
  assert.equal(status.BackendState, 'Running');
  assert.deepEqual(status.Self?.Tags, ['tag:router']);
  assert.match(r.out, new RegExp(`router_node_id = "${node.id}"`));

  // Secrets stay out of the work tree: the local state (live pre-auth keys in clear) is ignored, and cdktf.json
  // is not rewritten (its projectId is committed).
  assert.ok(existsSync(join(project, 'terraform.healthcare.tfstate')), 'cdktf keeps local state at the project root');
  assert.equal(git('check-ignore', '-q', 'terraform.healthcare.tfstate').status, 0, 'the state file is ignored');
  const dirty = git('status', '--porcelain', '--untracked-files=all').stdout.split('\n').filter((l) => l && !l.startsWith('A  '));
  assert.deepEqual(dirty, [], 'deploy leaves the work tree clean');
});

test('cdktf diff right after deploy has nothing to do', { skip, timeout: 300_000 }, async () => {
  const r = await cdktf(['diff']);
  assert.match(r.out, /No changes/);
});

test('a retag by hand shows in cdktf diff and in a refresh-only plan, and deploy restores it', { skip, timeout: 600_000 }, async () => {
  const node = await routerNode();
  const tag = cli(server, 'nodes', 'tag', '-i', node.id, '-t', 'tag:web');
  assert.equal(tag.status, 0, tag.stderr);

  const diff = await cdktf(['diff']);
  // The change names the construct path of the drifted node.
  assert.match(diff.out, /# tailplane_node\.\S+ \(tailnet\/clinic-router\/resource\) will be updated in-place/);
  assert.match(diff.out, /- "tag:web",\s+\+ "tag:router",/);
  assert.match(diff.out, /Plan: 0 to add, 1 to change, 0 to destroy/);

  const refresh = await run(terraformBin, ['plan', '-refresh-only', '-detailed-exitcode', '-input=false', '-no-color'], 2, stackDir());
  assert.match(refresh.out, /# tailplane_node\.\S+ has changed/);

  const deploy = await cdktf(['deploy', '--auto-approve']);
  assert.match(deploy.out, /0 added, 1 changed, 0 destroyed/);
  assert.deepEqual((await routerNode()).tags, ['tag:router']);
  await run(terraformBin, ['plan', '-detailed-exitcode', '-input=false', '-no-color'], 0, stackDir());
});

test('a policy whose test fails is refused at plan time with the test\'s message, and nothing changes', { skip, timeout: 300_000 }, async () => {
  const live = (await api(server, 'GET', '/api/v1/policy')).json.policy;
  writeCdktfJson('test/cdktf/broken-policy-app.ts');
  try {
    const r = await cdktf(['diff'], 1);
    assert.match(r.out, /Error: Invalid policy/);
    assert.match(r.out, /test failed: group:uzodevelopers should accept\s+tag:db:5432 but it is denied/);
  } finally {
    writeCdktfJson('stacks/main.ts');
  }
  assert.equal((await api(server, 'GET', '/api/v1/policy')).json.policy, live);
});

test('cdktf destroy removes what the stack created and nothing else', { skip, timeout: 600_000 }, async () => {
  const r = await cdktf(['destroy', '--auto-approve']);
  assert.match(r.out, /Destroy complete! Resources: 9 destroyed/);
  const users = ((await api(server, 'GET', '/api/v1/user')).json.users as any[]).map((u) => u.name);
  assert.deepEqual(users, ['carol']);
  const keys = (await api(server, 'GET', '/api/v1/preauthkey')).json.preAuthKeys as any[];
  assert.deepEqual(keys.map((k) => k.user?.name), ['carol']);
  assert.equal(await routerNode(), undefined);
  assert.equal((await api(server, 'GET', '/api/v1/policy')).json.policy, initialPolicy);
  assert.deepEqual((await api(server, 'GET', '/api/v1/dns')).json.dns, before_.dns);
});
