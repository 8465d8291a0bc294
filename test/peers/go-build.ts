/** Builds a Go program under test/peers into the per-version peer cache, rebuilding only when its sources change. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, rename, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The pinned tailscale version (test/peers/versions.json); the cache is keyed by it. */
export function tailscaleVersion(): string {
  const file = new URL('./versions.json', import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { tailscale: string }).tailscale;
}

/** $HOME/.cache/tailplane/peers/<version>, where built peers live. */
export function peerCacheDir(version = tailscaleVersion()): string {
  return join(homedir(), '.cache', 'tailplane', 'peers', version);
}

/** Newest modification time among the module's sources (*.go, go.mod, go.sum), searched recursively. */
async function newestSource(dir: string): Promise<number> {
  let newest = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, await newestSource(p));
    else if (/\.go$|^go\.(mod|sum)$/.test(e.name)) newest = Math.max(newest, (await stat(p)).mtimeMs);
  }
  return newest;
}

async function mtime(path: string): Promise<number | null> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return null;
  }
}

/**
 * `go build` the module in `dir` to <peer cache>/<outName> and return the binary's path. A cached binary newer
 * than every source is reused. The build goes to a temporary name first, so concurrent runs never see half a file.
 */
export async function buildGoProgram(dir: string, outName: string, opts: { version?: string } = {}): Promise<string> {
  const src = resolve(dir);
  const outDir = peerCacheDir(opts.version);
  const out = join(outDir, outName);
  const built = await mtime(out);
  if (built !== null && built >= (await newestSource(src))) return out;
  await mkdir(outDir, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    await run('go', ['build', '-o', tmp, '.'], { cwd: src, timeout: 15 * 60_000, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`go build in ${src} failed: ${e.stderr || e.message}`);
  }
  await rename(tmp, out);
  return out;
}
