#!/usr/bin/env node
// `npm test`: builds the pinned test peers (tailscale, tailscaled), type-checks, then runs every test file
// with node's test runner. Arguments narrow the run to matching test files.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

function run(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function findTests(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return findTests(p);
    return p.endsWith('.test.ts') ? [p] : [];
  });
}

const filters = process.argv.slice(2);
const files = findTests('test').sort().filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
run('node', ['--import', 'tsx', 'test/peers/build.ts']);
run('npx', ['tsc', '-p', 'tsconfig.json']);
// A test file still running after 20 minutes fails, and a file whose tests are done exits even if a handle (a child, a
// loop left running by a failure) would keep it alive: a hang must cost one failure, never CI's whole time.
const testArgs = ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', '--test-timeout=1200000', '--test-force-exit'];
run('node', [...testArgs, ...files]);

// The provider and the cdktf stack must work with OpenTofu too: run those tests again with the tofu that
// test/peers/build.ts built (same path as its tofuBinary()).
const tofuVersion = JSON.parse(readFileSync('test/peers/versions.json', 'utf8')).tofu;
const tofu = join(homedir(), '.cache', 'tailplane', 'peers', `tofu-${tofuVersion}`, 'tofu');
const iacTests = files.filter((f) => /(provider\/terraform|cdktf\/deploy)\.test\.ts$/.test(f));
if (iacTests.length > 0) {
  console.log(`\n# again with OpenTofu ${tofuVersion}: ${iacTests.join(' ')}`);
  run('node', [...testArgs, ...iacTests], { ...process.env, TERRAFORM_BINARY_NAME: tofu });
}

// The state and admin API tests must pass on PostgreSQL too: run them again with every test server on a
// throw-away PostgreSQL (test/helpers/server.ts honours TAILPLANE_TEST_STORE).
const storeTests = files.filter((f) => /foundation\/(admin-api|lifecycle-state)\.test\.ts$/.test(f));
if (storeTests.length > 0) {
  console.log(`\n# again on PostgreSQL: ${storeTests.join(' ')}`);
  run('node', [...testArgs, ...storeTests], { ...process.env, TAILPLANE_TEST_STORE: 'postgres' });
}
