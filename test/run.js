#!/usr/bin/env node
// `npm test`: builds the pinned test peers (tailscale, tailscaled), type-checks, then runs every test file
// with node's test runner. Arguments narrow the run to matching test files.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
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
run('node', ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files]);
