/**
 * Summarises a server .cpuprofile written under BENCH_PROFILE_DIR: the functions with the most self time and the
 * tailplane functions with the most total (inclusive) time, so a profile summary names what dominates.
 *   node --import tsx test/bench/profile-summary.ts /tmp/tailplane-prof/server-123.cpuprofile [--top 25] [--last 30]
 * --last S keeps only the samples of the profile's last S seconds: the scenario that ran just before the server
 * stopped (the churn wave, in the first server process of a run). --from S [--to S] keeps the samples between
 * those seconds from the profile's start instead; --timeline MS first prints how busy each slice of MS was, to
 * find them.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, last: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, timeline: { type: 'string' } } });
const top = Number(values.top);
const seconds = (name: 'last' | 'from' | 'to' | 'timeline') => {
  const v = values[name];
  if (v === undefined) return undefined;
  if (!(Number(v) > 0) && !(name === 'from' && Number(v) === 0)) throw new Error(`--${name}: expected a number of seconds above 0, got ${v}`);
  return Number(v);
};
const lastS = seconds('last');
const fromS = seconds('from');
const toS = seconds('to');
const sliceMs = seconds('timeline');

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Sample i lasted timeDeltas[i + 1] (the delta before the next sample); the last one is dropped.
  const at: number[] = [];
  for (let i = 0, t = 0; i < p.samples.length; i++) at.push((t += p.timeDeltas[i]!));
  const from = lastS !== undefined ? at.at(-1)! - lastS * 1e6 : fromS !== undefined ? fromS * 1e6 : -Infinity;
  const to = toS !== undefined ? toS * 1e6 : Infinity;
  const idleIds = new Set(p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  if (sliceMs) timeline(at, p, idleIds, sliceMs * 1e3);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length - 1; i++) {
    if (at[i]! >= from && at[i]! < to) selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + p.timeDeltas[i + 1]!);
  }
  const label = (n: ProfileNode) => {
    const url = n.callFrame.url.replace(/^.*\/(src|node_modules|test)\//, '$1/');
    return `${n.callFrame.functionName || '(anonymous)'} ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    all += us;
    if (idleIds.has(id)) idle += us;
    self.set(label(n), (self.get(label(n)) ?? 0) + us);
    // Inclusive time: each distinct frame on the stack once (recursion counted once).
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      if (seen.has(l)) continue;
      seen.add(l);
      total.set(l, (total.get(l) ?? 0) + us);
    }
  }
  const busy = all - idle;
  const row = ([l, us]: [string, number]) => `${(us / 1e6).toFixed(2).padStart(8)} s ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${l}`;
  console.log(`${file}: ${(busy / 1e6).toFixed(2)} s busy of ${(all / 1e6).toFixed(2)} s sampled`);
  console.log('self time:');
  for (const r of [...self].filter(([l]) => !l.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(row(r));
  console.log('total time, tailplane functions:');
  for (const r of [...total].filter(([l]) => l.includes('src/')).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(row(r));
}

/** How busy (not idle) the process was in each slice of `sliceUs`, one line per slice. */
function timeline(at: readonly number[], p: Profile, idleIds: ReadonlySet<number>, sliceUs: number): void {
  const slices: { busy: number; all: number }[] = [];
  for (let i = 0; i < p.samples.length - 1; i++) {
    const s = (slices[Math.floor(at[i]! / sliceUs)] ??= { busy: 0, all: 0 });
    s.all += p.timeDeltas[i + 1]!;
    if (!idleIds.has(p.samples[i]!)) s.busy += p.timeDeltas[i + 1]!;
  }
  slices.forEach((s, k) => {
    const share = s.all ? s.busy / s.all : 0;
    console.log(`${((k * sliceUs) / 1e6).toFixed(2).padStart(8)} s ${(100 * share).toFixed(0).padStart(4)} % ${'#'.repeat(Math.round(40 * share))}`);
  });
}
