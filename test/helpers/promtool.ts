/** Prometheus's `promtool` (Debian's `prometheus` package, installed with apt-get when missing) to lint scrapes. */
import { spawnSync } from 'node:child_process';
import { ensureAptPackage } from './apt.ts';

export const ensurePromtool = (): string => ensureAptPackage('/usr/bin/promtool', 'prometheus');

/** `promtool check metrics` on a scrape: its exit status and what it complained about. */
export function checkMetrics(text: string): { status: number | null; output: string } {
  const r = spawnSync(ensurePromtool(), ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, output: r.stdout + r.stderr };
}

/** The value of one series in a scrape, e.g. seriesValue(text, 'tailplane_registrations_total{method="authkey"}'). */
export function seriesValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Fetches a /metrics URL and checks the answer is Prometheus's text format. */
export async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  if (res.status !== 200 || !/^text\/plain; version=0\.0\.4/.test(res.headers.get('content-type') ?? '')) {
    throw new Error(`GET ${url}: HTTP ${res.status} ${res.headers.get('content-type')}`);
  }
  return res.text();
}
