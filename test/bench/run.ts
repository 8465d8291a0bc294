/**
 * `npm run bench`: runs the load-generator scenarios for each node count and policy, prints the results
 * against the issue's targets, and writes bench-results/latest.{json,md}.
 * Flags: --nodes 100,1000[,5000,10000]  --policy grouped,allow-all  --concurrency 64  --out bench-results
 *        --compare headscale|none (default headscale): also run the scenarios against Headscale (servers/headscale.ts)
 *        and report ratios, for node counts up to --compare-max-nodes (default 100: Headscale needs ~6 minutes to
 *        connect 1,000 nodes on a 2-core machine, more than the rest of the quick run).
 *        --console-nodes 10000 (0 to skip): server time of the admin console's machines page with that many machines.
 *        --replica-nodes 1000 (0 to skip): two replicas on PostgreSQL beside one server on SQLite (replicas.ts),
 *        after the stores' own registration rates, one by one and group-committed (store-writes.ts).
 *        --allow-all-max-nodes 1000: the largest node count the allow-all layout runs at (its cost is quadratic).
 *        --large-nodes 50000 (default 0, skipped): a grouped tailnet of that size on --large-replicas (default 3)
 *        replicas on PostgreSQL (large.ts: one process here may not hold a connection per client).
 * Environment: BENCH_PROFILE_DIR (a .cpuprofile per server process), BENCH_SERVER_NODE_OPTIONS (e.g. a larger heap
 * limit for the server at 50,000 nodes). The simulated nodes run in gofleet (loadgen/gofleet, Go), built on first use.
 * The defaults are the quick run (about 10 minutes on 2 cores); the full one is
 *   npm run bench -- --nodes 100,1000,5000,10000 --compare-max-nodes 1000
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkComparison, comparisonMarkdown, comparisonRows, comparisonTable, pairRuns } from './compare.ts';
import type { PolicyKind } from './policy.ts';
import { checkScaleTargets, checkTargets, machine, markdown, scenarioTable, targetTable } from './report.ts';
import { runScenarios, type RunResult } from './scenarios.ts';
import { benchConsole, type ConsoleBench } from './console.ts';
import { benchReplicas, replicaMarkdown, type ReplicaBench } from './replicas.ts';
import { runLarge } from './large.ts';
import { benchStoreWrites, storeWritesMarkdown, type StoreWrites } from './store-writes.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '100,1000' },
    policy: { type: 'string', default: 'grouped,allow-all' },
    concurrency: { type: 'string', default: '64' },
    out: { type: 'string', default: 'bench-results' },
    compare: { type: 'string', default: 'headscale' },
    'compare-max-nodes': { type: 'string', default: '100' },
    'console-nodes': { type: 'string', default: '10000' },
    'replica-nodes': { type: 'string', default: '1000' },
    'allow-all-max-nodes': { type: 'string', default: '1000' },
    'large-nodes': { type: 'string', default: '0' },
    'large-replicas': { type: 'string', default: '3' },
  },
});

const counts = values.nodes.split(',').map(Number);
if (counts.some((c) => !Number.isInteger(c) || c < 2)) throw new Error(`--nodes: expected a comma-separated list of integers ≥ 2, got ${values.nodes}`);
const kinds = values.policy.split(',') as PolicyKind[];
if (kinds.some((k) => k !== 'grouped' && k !== 'allow-all')) throw new Error(`--policy: expected grouped and/or allow-all, got ${values.policy}`);
const concurrency = Number(values.concurrency);
if (values.compare !== 'headscale' && values.compare !== 'none') throw new Error(`--compare: headscale or none, got ${values.compare}`);
const compare = values.compare === 'headscale';
const compareMaxNodes = Number(values['compare-max-nodes']);
if (!Number.isInteger(compareMaxNodes) || compareMaxNodes < 0) throw new Error(`--compare-max-nodes: expected a whole number, got ${values['compare-max-nodes']}`);

const consoleNodes = Number(values['console-nodes']);
if (!Number.isInteger(consoleNodes) || consoleNodes < 0) throw new Error(`--console-nodes: expected a whole number, got ${values['console-nodes']}`);
const replicaNodes = Number(values['replica-nodes']);
if (!Number.isInteger(replicaNodes) || replicaNodes < 0) throw new Error(`--replica-nodes: expected a whole number, got ${values['replica-nodes']}`);

// Allow-all hands every node every peer, so its cost is quadratic: by default it runs only up to 1,000 nodes.
const allowAllMaxNodes = Number(values['allow-all-max-nodes']);
if (!Number.isInteger(allowAllMaxNodes) || allowAllMaxNodes < 0) throw new Error(`--allow-all-max-nodes: expected a whole number, got ${values['allow-all-max-nodes']}`);

const largeNodes = Number(values['large-nodes']);
if (!Number.isInteger(largeNodes) || largeNodes < 0) throw new Error(`--large-nodes: expected a whole number, got ${values['large-nodes']}`);
const largeReplicas = Number(values['large-replicas']);
if (!Number.isInteger(largeReplicas) || largeReplicas < 1) throw new Error(`--large-replicas: expected a whole number ≥ 1, got ${values['large-replicas']}`);

const m = machine();
console.log(`tailplane bench on ${m.nproc} CPUs, ${m.memoryGiB} GiB, Node ${m.node}`);
const runs: RunResult[] = [];
const headscaleRuns: RunResult[] = [];
const log = (s: string) => console.log(s);
for (const nodes of counts) {
  for (const policy of kinds) {
    if (policy === 'allow-all' && nodes > allowAllMaxNodes) {
      console.log(`${nodes} nodes, allow-all policy: skipped, above --allow-all-max-nodes ${allowAllMaxNodes}`);
      continue;
    }
    console.log(`${nodes} nodes, ${policy} policy:`);
    runs.push(await runScenarios({ nodes, policy, concurrency, log }));
    // Right after tailplane's run of the same layout, so both see the same machine conditions.
    if (!compare || nodes > compareMaxNodes) continue;
    console.log(`${nodes} nodes, ${policy} policy, Headscale:`);
    headscaleRuns.push(await runScenarios({ server: 'headscale', nodes, policy, concurrency, log }));
  }
}
let largeFailure = '';
if (largeNodes > 0) {
  console.log(`${largeNodes} nodes, grouped policy, ${largeReplicas} replicas on PostgreSQL:`);
  // The largest run may fail where the others did not (memory, the machine's limits): the rest is still reported.
  try {
    runs.push(await runLarge({ nodes: largeNodes, replicas: largeReplicas, concurrency, log }));
  } catch (err) {
    largeFailure = `\n${largeNodes} nodes on ${largeReplicas} replicas: failed, ${(err as Error).message}\n`;
    console.error(largeFailure);
  }
}
const checks = checkTargets(runs);
const scale = checkScaleTargets(runs);
console.log('\n' + scenarioTable(runs) + '\n');
if (checks.length) console.log(targetTable(checks) + '\n');
if (scale.length) console.log('Scale targets (issue 20):\n' + targetTable(scale) + '\n');
let sideBySide: string | undefined;
let comparison: object | undefined;
if (compare) {
  const pairs = pairRuns(runs, headscaleRuns);
  const rows = comparisonRows(pairs);
  const verdicts = checkComparison(pairs);
  console.log(`${headscaleRuns[0]?.server ?? 'headscale'}:\n` + scenarioTable(headscaleRuns) + '\n');
  console.log('Side by side (ratio = headscale ÷ tailplane):\n' + comparisonTable(rows) + '\n');
  console.log(targetTable(verdicts) + '\n');
  sideBySide = comparisonMarkdown(headscaleRuns, rows, verdicts);
  comparison = { headscaleRuns, rows, targets: verdicts };
} else {
  console.log('Headscale side-by-side: not measured.');
}
let consolePage: ConsoleBench | undefined;
let consoleLine = '';
if (consoleNodes > 0) {
  console.log(`admin console, machines page with ${consoleNodes} machines:`);
  consolePage = await benchConsole(consoleNodes);
  const worst = Math.max(consolePage.firstPageMs.median, consolePage.searchMs.median);
  consoleLine = `Admin console machines page with ${consoleNodes} machines, server time: first page ${consolePage.firstPageMs.median} ms median (max ${consolePage.firstPageMs.max}), search ${consolePage.searchMs.median} ms median (max ${consolePage.searchMs.max}); target < 300 ms: ${worst < 300 ? 'pass' : 'MISS'}.`;
  console.log(consoleLine + '\n');
}
let replicas: ReplicaBench | undefined;
let replicaSection = '';
let storeWrites: StoreWrites[] | undefined;
if (replicaNodes > 0) {
  console.log('registrations through the state layer alone:');
  storeWrites = await benchStoreWrites();
  console.log(`high availability, ${replicaNodes} clients:`);
  replicas = await benchReplicas(replicaNodes, concurrency, log);
  replicaSection = [
    '\n## Registrations per second through the state layer alone (no network, no maps)\n',
    storeWritesMarkdown(storeWrites),
    '\n## High availability: two replicas on PostgreSQL beside one server on SQLite\n',
    replicaMarkdown(replicas) + '\n',
  ].join('\n');
  console.log(replicaSection);
}
mkdirSync(values.out, { recursive: true });
writeFileSync(join(values.out, 'latest.json'), JSON.stringify({ machine: m, runs, targets: checks, scaleTargets: scale, comparison, consolePage, storeWrites, replicas }, null, 2) + '\n');
writeFileSync(join(values.out, 'latest.md'), markdown(m, runs, checks, scale, sideBySide) + largeFailure + (consoleLine ? `\n${consoleLine}\n` : '') + replicaSection);
console.log(`wrote ${join(values.out, 'latest.md')} and latest.json`);
