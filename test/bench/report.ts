/** Bench output: the issue's targets checked against measured figures, as a console table, JSON and Markdown. */
import { execSync } from 'node:child_process';
import { loadavg, totalmem } from 'node:os';
import type { RunResult } from './scenarios.ts';

export interface TargetCheck {
  readonly target: string;
  readonly nodes: number;
  readonly policy: string;
  readonly measured: string;
  readonly verdict: 'PASS' | 'MISS' | 'MEASURED';
  /** How far inside (PASS) or outside (MISS) the target, in words. */
  readonly margin: string;
}

export interface Machine {
  readonly nproc: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly date: string;
  readonly cpu: string;
  /** 1-minute load average when the bench started: other work on the machine skews the figures. */
  readonly loadAvg: number;
}

export function machine(): Machine {
  const cpu = /model name\s*:\s*(.+)/.exec(execSync('cat /proc/cpuinfo', { encoding: 'utf8' }))?.[1] ?? 'unknown';
  return {
    nproc: Number(execSync('nproc', { encoding: 'utf8' }).trim()),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    date: new Date().toISOString(),
    cpu,
    loadAvg: Math.round(loadavg()[0]! * 100) / 100,
  };
}

const scenario = (r: RunResult, name: string) => r.scenarios.find((s) => s.name === name);

function upper(target: string, r: RunResult, value: number | undefined, limit: number, unit: string, missing = 0): TargetCheck | undefined {
  if (value === undefined) return undefined;
  const ok = value < limit && missing === 0;
  const ratio = ok ? `${(limit / value).toFixed(1)}× headroom` : `${(value / limit).toFixed(1)}× the limit`;
  const margin = missing ? `${missing} nodes never saw it` : `${ok ? '' : '+'}${(((value - limit) / limit) * 100).toFixed(0)} % (${ratio})`;
  return { target, nodes: r.nodes, policy: r.policy, measured: `${fmt(value)} ${unit}`, verdict: ok ? 'PASS' : 'MISS', margin };
}

/** Issue 8's targets: join < 1 s and ≥ 200 registrations/s at 1,000 nodes; the 10k targets only at 10,000. */
export function checkTargets(runs: RunResult[]): TargetCheck[] {
  const out: (TargetCheck | undefined)[] = [];
  for (const r of runs) {
    const join = scenario(r, 'join (fan-out)');
    const connect = scenario(r, 'mass connect');
    if (r.nodes === 1000) {
      out.push(upper('join reaches every allowed peer < 1 s', r, join?.ms, 1000, 'ms', join?.missing));
      const rate = connect?.extra.registrationsPerSec;
      if (rate !== undefined) {
        const ok = rate >= 200;
        // The load generator shares the machine, so also give the server's own cost: what one core of it sustains.
        const cpuMs = (connect!.server.cpuSec * 1000) / r.nodes;
        const margin = `${ok ? '+' : ''}${(((rate - 200) / 200) * 100).toFixed(0)} %; server CPU ${cpuMs.toFixed(1)} ms per registration (≈${(1000 / cpuMs).toFixed(0)}/s per server core), load generator ${((r.loadgenCpuSec * 1000) / r.nodes).toFixed(1)} ms per node over the whole run`;
        out.push({ target: '≥ 200 registrations/s', nodes: r.nodes, policy: r.policy, measured: `${rate.toFixed(0)} /s`, verdict: ok ? 'PASS' : 'MISS', margin });
      }
    }
    if (r.nodes === 10_000) {
      out.push(upper('server RSS < 2 GB', r, peakRss(r), 2048, 'MiB'));
      out.push(upper('join < 3 s', r, join?.ms, 3000, 'ms', join?.missing));
      const pol = scenario(r, 'policy change');
      out.push(upper('policy change < 10 s', r, pol?.ms, 10_000, 'ms', pol?.missing));
    }
  }
  return out.filter((x): x is TargetCheck => x !== undefined);
}

const peakRss = (r: RunResult) => Math.max(...r.scenarios.map((s) => s.server.peakRssMiB));

/** A figure the issue asks to measure without a limit: reported, never a miss. */
function measuredOnly(target: string, r: RunResult, measured: string | undefined): TargetCheck | undefined {
  return measured === undefined ? undefined : { target, nodes: r.nodes, policy: r.policy, measured, verdict: 'MEASURED', margin: '' };
}

/**
 * Issue 20's table (scale, second round), row by row: each applies to the runs of its node count and policy.
 * Server CPU per registration is the server's CPU during mass connect over the nodes that joined.
 */
export function checkScaleTargets(runs: RunResult[]): TargetCheck[] {
  const out: (TargetCheck | undefined)[] = [];
  for (const r of runs) {
    const ms = (name: string) => scenario(r, name)?.ms;
    const missing = (name: string) => scenario(r, name)?.missing;
    const connect = scenario(r, 'mass connect');
    const cpuPerReg = connect && (connect.server.cpuSec * 1000) / r.nodes;
    const at = (nodes: number, policy: string) => r.nodes === nodes && r.policy === policy;
    const serverCpu = r.scenarios.reduce((sum, s) => sum + s.server.cpuSec, 0);
    // The issue asks it at 50,000 nodes, which this machine cannot run end to end: checked at the largest runs too.
    const loadgenLighter = () => out.push(upper('load generator CPU < server CPU', r, r.loadgenCpuSec, serverCpu, 's'));
    if (at(10_000, 'grouped')) {
      out.push(upper('server CPU per registration ≤ 2.5 ms', r, cpuPerReg, 2.5, 'ms'));
      out.push(upper('5 % ephemeral churn < 3 s', r, ms('ephemeral churn (5 %)'), 3000, 'ms', missing('ephemeral churn (5 %)')));
      out.push(upper('policy change reaches all < 1.5 s', r, ms('policy change'), 1500, 'ms', missing('policy change')));
      out.push(upper('restart + every client back with a full map < 20 s', r, ms('restart + reconnect'), 20_000, 'ms', missing('restart + reconnect')));
      out.push(upper('peak RSS < 1 GB', r, peakRss(r), 1024, 'MiB'));
      loadgenLighter();
    }
    if (at(1000, 'allow-all')) {
      out.push(upper('mass connect < 6 s', r, ms('mass connect'), 6000, 'ms', missing('mass connect')));
      out.push(upper('restart + reconnect < 6 s', r, ms('restart + reconnect'), 6000, 'ms', missing('restart + reconnect')));
    }
    if (at(5000, 'allow-all')) {
      out.push(measuredOnly('mass connect', r, connect && `${connect.ms.toFixed(0)} ms`));
      out.push(upper('peak RSS < 2 GB', r, peakRss(r), 2048, 'MiB'));
      loadgenLighter();
    }
    if (at(50_000, 'grouped')) {
      out.push(measuredOnly('mass connect', r, connect && `${connect.ms.toFixed(0)} ms, ${cpuPerReg!.toFixed(1)} ms server CPU per registration`));
      out.push(upper('join fan-out < 3 s', r, ms('join (fan-out)'), 3000, 'ms', missing('join (fan-out)')));
      out.push(upper('policy change < 10 s', r, ms('policy change'), 10_000, 'ms', missing('policy change')));
      out.push(upper('peak RSS < 4 GB', r, peakRss(r), 4096, 'MiB'));
      loadgenLighter();
    }
  }
  return out.filter((x): x is TargetCheck => x !== undefined);
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

/** A Markdown table (also readable in a terminal). */
export function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function scenarioTable(runs: RunResult[]): string {
  const rows = runs.flatMap((r) =>
    r.scenarios.map((s) => [
      String(r.nodes),
      r.policy,
      s.name,
      `${fmt(s.ms)} ms`,
      `${s.affected - s.missing}/${s.affected}`,
      Object.entries(s.extra).map(([k, v]) => `${k} ${fmt(v)}`).join(', '),
      `${s.server.cpuSec.toFixed(2)} s`,
      `${s.server.rssMiB.toFixed(0)} / ${s.server.peakRssMiB.toFixed(0)} MiB`,
    ]),
  );
  return table(['nodes', 'policy', 'scenario', 'latency', 'reached', 'details', 'server CPU', 'server RSS now / peak'], rows);
}

export function targetTable(checks: TargetCheck[]): string {
  return table(
    ['target', 'nodes', 'policy', 'measured', 'verdict', 'margin'],
    checks.map((c) => [c.target, String(c.nodes), c.policy, c.measured, c.verdict, c.margin]),
  );
}

/** `sideBySide`: the Headscale comparison section (compare.ts), when it was measured. */
export function markdown(m: Machine, runs: RunResult[], checks: TargetCheck[], scale: TargetCheck[], sideBySide = 'Headscale side-by-side: not measured.'): string {
  return [
    '# tailplane bench',
    '',
    `Machine: ${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB} GiB memory, Node ${m.node}, ${m.date}; load average ${m.loadAvg} at start. Server and load generator share the machine.`,
    '',
    '## Scenarios',
    '',
    scenarioTable(runs),
    '',
    `Load generator CPU: ${runs.map((r) => `${r.nodes}/${r.policy} ${r.loadgenCpuSec.toFixed(1)} s`).join(', ')}.`,
    ...runs.filter((r) => r.server !== 'tailplane').map((r) => `\n${r.nodes}/${r.policy} ran on ${r.server} (test/bench/large.ts: one process may hold fewer open files than clients here); its server CPU is the replicas' sum, its RSS the largest replica's.`),
    '',
    '## Targets (issue 8)',
    '',
    checks.length ? targetTable(checks) : '_No run at 1,000 or 10,000 nodes, so no target applies._',
    '',
    '## Targets (issue 20, scale second round)',
    '',
    scale.length ? targetTable(scale) : '_No run at a node count and policy of its table._',
    '',
    sideBySide,
    '',
  ].join('\n');
}
