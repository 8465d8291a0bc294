/** Debian packages the tests need (chromium, promtool): installed with apt-get when missing (tests run as root in the dev container). */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Returns `path`, installing Debian's `pkg` first if it is not there. */
export function ensureAptPackage(path: string, pkg: string): string {
  if (!existsSync(path)) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { stdio: 'inherit', env });
  }
  return path;
}
