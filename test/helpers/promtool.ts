/** Prometheus's `promtool` (Debian's `prometheus` package, installed with apt-get when missing) to lint scrapes. */
import { spawnSync } from 'node:child_process';
import { ensureAptPackage } from './apt.ts';

export const ensurePromtool = (): string => ensureAptPackage('/usr/bin/promtool', 'prometheus');

/** `promtool check metrics` on a scrape: its exit status and what it complained about. */
export function checkMetrics(text: string): { status: number | null; output: string } {
  const r = spawnSync(ensurePromtool(), ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, output: r.stdout + r.stderr };
}
