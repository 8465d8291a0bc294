/**
 * `npm run bench`: runs the load-generator scenarios for each node count and policy, prints the results
 * against the targets, and writes bench-results/latest.{json,md}.
 * Flags: --nodes 100,1000[,5000,10000]  --policy grouped,allow-all  --concurrency 64  --out bench-results
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { PolicyKind } from './policy.ts';
import { checkTargets, machine, markdown, scenarioTable, targetTable } from './report.ts';
import { runScenarios, type RunResult } from './scenarios.ts';

/** Allow-all hands every node every peer, so its cost is quadratic: run it only up to this many nodes. */
const allowAllMaxNodes = 1000;

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '100,1000' },
    policy: { type: 'string', default: 'grouped,allow-all' },
    concurrency: { type: 'string', default: '64' },
    out: { type: 'string', default: 'bench-results' },
  },
});

const counts = values.nodes.split(',').map(Number);
if (counts.some((c) => !Number.isInteger(c) || c < 2)) throw new Error(`--nodes: expected a comma-separated list of integers ≥ 2, got ${values.nodes}`);
const kinds = values.policy.split(',') as PolicyKind[];
if (kinds.some((k) => k !== 'grouped' && k !== 'allow-all')) throw new Error(`--policy: expected grouped and/or allow-all, got ${values.policy}`);
const concurrency = Number(values.concurrency);

const m = machine();
console.log(`tailplane bench on ${m.nproc} CPUs, ${m.memoryGiB} GiB, Node ${m.node}`);
const runs: RunResult[] = [];
for (const nodes of counts) {
  for (const policy of kinds) {
    if (policy === 'allow-all' && nodes > allowAllMaxNodes) continue;
    console.log(`${nodes} nodes, ${policy} policy:`);
    runs.push(await runScenarios({ nodes, policy, concurrency, log: (s) => console.log(s) }));
  }
}
const checks = checkTargets(runs);
console.log('\n' + scenarioTable(runs) + '\n');
if (checks.length) console.log(targetTable(checks) + '\n');
console.log('Headscale side-by-side: not measured.');
mkdirSync(values.out, { recursive: true });
writeFileSync(join(values.out, 'latest.json'), JSON.stringify({ machine: m, runs, targets: checks }, null, 2) + '\n');
writeFileSync(join(values.out, 'latest.md'), markdown(m, runs, checks));
console.log(`wrote ${join(values.out, 'latest.md')} and latest.json`);
