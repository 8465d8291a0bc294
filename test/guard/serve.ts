/** Runs `tailplane serve` to its end, for tests of servers that must refuse to start. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, tempDir } from '../helpers/server.ts';

/** Runs `tailplane serve` until it exits (or 20 s pass, then `signal` is set), with `env` on top of ours. */
export function serveToEnd(args: string[], env: Record<string, string> = {}, dataDir = tempDir()) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'tailplane.js'), 'serve', '--data-dir', dataDir, ...args], {
    env: { ...process.env, TAILPLANE_LOG_LEVEL: 'warn', TAILPLANE_METRICS_LISTEN_ADDR: '', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, signal: r.signal, stderr: r.stderr };
}
