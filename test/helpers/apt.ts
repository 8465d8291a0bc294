/**
 * Debian packages the real-peer tests need (openssh-client, chromium, prometheus' promtool): installed with apt-get
 * when missing. CI runs as root on a fresh machine whose package lists may be empty, so the first install of a run
 * refreshes them; elsewhere a missing package is one clear error.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

let listsFresh = false;

/** Returns `path`, installing Debian's `pkg` first if it is not there. */
export function ensureAptPackage(path: string, pkg: string): string {
  if (existsSync(path)) return path;
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    throw new Error(`${path} is missing: install the Debian package ${pkg} (apt-get install ${pkg}) to run these tests`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!listsFresh) execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
  listsFresh = true;
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { stdio: 'inherit', env });
  return path;
}
