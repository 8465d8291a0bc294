/**
 * The Headscale side-by-side (issue 8): the same scenarios against both servers, paired by node count and
 * policy, as ratios headscale ÷ tailplane (so > 1 means tailplane is better), and the "≥ 5× better" verdicts.
 */
import { scenarioTable, table, targetTable, type TargetCheck } from './report.ts';
import type { RunResult, ScenarioResult } from './scenarios.ts';

/** The issue's bar: tailplane at least this many times better than Headscale. */
export const targetRatio = 5;
/** Scenarios whose latency is a fan-out: one change, and the time until every affected node saw it. */
export const fanOutScenarios = ['join (fan-out)', 'endpoint change', 'policy change', 'ephemeral churn (5 %)'];
/** /proc counts CPU in 10 ms ticks: a tailplane figure below that is treated as one tick, not as zero. */
const cpuTickSec = 0.01;

/** Two runs of the same node count and policy, one per server. */
export interface Pair {
  readonly tailplane: RunResult;
  readonly headscale: RunResult;
}

export interface ComparisonRow {
  readonly nodes: number;
  readonly policy: string;
  readonly scenario: string;
  readonly tailplaneMs: number;
  readonly headscaleMs: number;
  readonly latencyRatio: number;
  readonly tailplaneCpuSec: number;
  readonly headscaleCpuSec: number;
  readonly cpuRatio: number;
  /** Nodes that never saw the effect before the timeout, per server. */
  readonly tailplaneMissing: number;
  readonly headscaleMissing: number;
}

export function pairRuns(tailplane: RunResult[], headscale: RunResult[]): Pair[] {
  return tailplane.flatMap((t) => {
    const h = headscale.find((x) => x.nodes === t.nodes && x.policy === t.policy);
    return h ? [{ tailplane: t, headscale: h }] : [];
  });
}

/** NaN (shown as "–") when neither server used a measurable tick. */
const cpuRatio = (hs: number, tp: number) => (hs < cpuTickSec && tp < cpuTickSec ? NaN : hs / Math.max(tp, cpuTickSec));

export function comparisonRows(pairs: Pair[]): ComparisonRow[] {
  return pairs.flatMap(({ tailplane, headscale }) =>
    tailplane.scenarios.flatMap((t) => {
      const h = headscale.scenarios.find((s) => s.name === t.name);
      if (!h) return [];
      return [{
        nodes: tailplane.nodes,
        policy: tailplane.policy,
        scenario: t.name,
        tailplaneMs: t.ms,
        headscaleMs: h.ms,
        latencyRatio: h.ms / t.ms,
        tailplaneCpuSec: t.server.cpuSec,
        headscaleCpuSec: h.server.cpuSec,
        cpuRatio: cpuRatio(h.server.cpuSec, t.server.cpuSec),
        tailplaneMissing: t.missing,
        headscaleMissing: h.missing,
      }];
    }),
  );
}

const fmtMs = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const fmtRatio = (r: number) => (Number.isNaN(r) ? '–' : `${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toPrecision(2)}×`);
const missingNote = (missing: number) => (missing ? ` (${missing} missing)` : '');

export function comparisonTable(rows: ComparisonRow[]): string {
  const head = ['nodes', 'policy', 'scenario', 'tailplane', 'headscale', 'latency ratio', 'tailplane CPU', 'headscale CPU', 'CPU ratio'];
  const body = rows.map((r) => [
    String(r.nodes),
    r.policy,
    r.scenario,
    `${fmtMs(r.tailplaneMs)} ms${missingNote(r.tailplaneMissing)}`,
    `${fmtMs(r.headscaleMs)} ms${missingNote(r.headscaleMissing)}`,
    fmtRatio(r.latencyRatio),
    `${r.tailplaneCpuSec.toFixed(2)} s`,
    `${r.headscaleCpuSec.toFixed(2)} s`,
    fmtRatio(r.cpuRatio),
  ]);
  return table(head, body);
}

/**
 * PASS when the ratio is at least 5× and tailplane reached every node. Nodes Headscale never reached make its
 * figure (the last arrival it did make) a lower bound, so a PASS stays valid; the margin says so.
 */
function verdict(target: string, r: RunResult, ratio: number, detail: string, tpMissing: number, hsMissing: number): TargetCheck {
  const ok = ratio >= targetRatio && tpMissing === 0;
  const pctOff = ((ratio - targetRatio) / targetRatio) * 100;
  const notes = [
    `${pctOff >= 0 ? '+' : ''}${pctOff.toFixed(0)} % vs ${targetRatio}×`,
    ...(tpMissing ? [`tailplane missed ${tpMissing} nodes`] : []),
    ...(hsMissing ? [`headscale missed ${hsMissing} nodes (its figure is a lower bound)`] : []),
  ];
  return { target, nodes: r.nodes, policy: r.policy, measured: `${fmtRatio(ratio)} (${detail})`, verdict: ok ? 'PASS' : 'MISS', margin: notes.join('; ') };
}

const total = (ss: ScenarioResult[]) => ss.reduce((s, x) => s + x.server.cpuSec, 0);

/** Per pair: one latency verdict per fan-out scenario, and one for server CPU over all five scenarios. */
export function checkComparison(pairs: Pair[]): TargetCheck[] {
  const rows = comparisonRows(pairs);
  return pairs.flatMap(({ tailplane, headscale }) => {
    const mine = rows.filter((x) => x.nodes === tailplane.nodes && x.policy === tailplane.policy);
    const latency = mine
      .filter((x) => fanOutScenarios.includes(x.scenario))
      .map((x) => verdict(`≥ ${targetRatio}× faster ${x.scenario} than Headscale`, tailplane, x.latencyRatio, `${fmtMs(x.tailplaneMs)} vs ${fmtMs(x.headscaleMs)} ms`, x.tailplaneMissing, x.headscaleMissing));
    const [tp, hs] = [total(tailplane.scenarios), total(headscale.scenarios)];
    const cpu = verdict(`≥ ${targetRatio}× less server CPU than Headscale (all scenarios)`, tailplane, cpuRatio(hs, tp), `${tp.toFixed(2)} vs ${hs.toFixed(2)} s`, 0, 0);
    return [...latency, cpu];
  });
}

/** The Markdown section that replaces "not measured" in latest.md. */
export function comparisonMarkdown(headscaleRuns: RunResult[], rows: ComparisonRow[], checks: TargetCheck[]): string {
  const name = headscaleRuns[0]?.server ?? 'headscale';
  return [
    `## Side by side with ${name}`,
    '',
    `Same machine, load generator and scenarios; ${name} with its default tuning, SQLite, warn-level logs. Ratios are headscale ÷ tailplane: above 1 tailplane is better.`,
    '',
    comparisonTable(rows),
    '',
    `### Targets: at least ${targetRatio}× better than Headscale`,
    '',
    targetTable(checks),
    '',
    `### ${name} scenarios`,
    '',
    scenarioTable(headscaleRuns),
    '',
    `Load generator CPU against ${name}: ${headscaleRuns.map((r) => `${r.nodes}/${r.policy} ${r.loadgenCpuSec.toFixed(1)} s`).join(', ')}.`,
  ].join('\n');
}
