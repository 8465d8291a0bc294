/** Prometheus's `promtool` (Debian's `prometheus` package, installed with apt-get when missing) to lint scrapes. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const promtoolPath = '/usr/bin/promtool';

/** Installs Debian's prometheus package if promtool is not there (the tests run as root in the dev container). */
export function ensurePromtool(): string {
  if (!existsSync(promtoolPath)) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'prometheus'], { stdio: 'inherit', env });
  }
  return promtoolPath;
}

/** `promtool check metrics` on a scrape: its exit status and what it complained about. */
export function checkMetrics(text: string): { status: number | null; output: string } {
  const r = spawnSync(ensurePromtool(), ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, output: r.stdout + r.stderr };
}
