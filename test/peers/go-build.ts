/** Builds a Go program under test/peers into the per-version peer cache, rebuilding only when its sources change. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
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

/** A file of a dependency replaced in this build only; `with` is relative to the module being built. */
export interface Patch {
  readonly module: string;
  readonly file: string;
  readonly with: string;
}

/**
 * `go build` the module in `dir` to <peer cache>/<outName> and return the binary's path. A cached binary newer
 * than every source is reused. The build goes to a temporary name first, so concurrent runs never see half a file.
 */
export async function buildGoProgram(dir: string, outName: string, opts: { version?: string; patches?: readonly Patch[] } = {}): Promise<string> {
  const src = resolve(dir);
  const outDir = peerCacheDir(opts.version);
  const out = join(outDir, outName);
  const built = await mtime(out);
  if (built !== null && built >= (await newestSource(src))) return out;
  await mkdir(outDir, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const patched = `${out}.patched-${process.pid}`;
  try {
    const args = ['build', '-o', tmp];
    if (opts.patches?.length) args.push(`-modfile=${await writePatchedModules(src, patched, opts.patches)}`);
    await run('go', [...args, '.'], { cwd: src, timeout: 15 * 60_000, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`go build in ${src} failed: ${e.stderr || e.message}`);
  } finally {
    await rm(patched, { recursive: true, force: true });
  }
  await rename(tmp, out);
  return out;
}

/**
 * Patching: go refuses to overlay files in the module cache, so each patched module is copied into `dir`, its
 * file replaced, and the build uses a go.mod there (via -modfile; src's own stays as it is) that replaces the
 * module with the copy. Returns that go.mod's path; `dir` is the build's own, removed after it.
 */
async function writePatchedModules(src: string, dir: string, patches: readonly Patch[]): Promise<string> {
  let mod = await readFile(join(src, 'go.mod'), 'utf8');
  for (const p of patches) {
    const { stdout } = await run('go', ['mod', 'download', '-json', p.module], { cwd: src });
    const { Dir, Version } = JSON.parse(stdout) as { Dir?: string; Version?: string };
    if (!Dir || !Version) throw new Error(`go mod download ${p.module} gave no directory`);
    const copy = join(dir, `${p.module}@${Version}`);
    await cp(Dir, copy, { recursive: true });
    await chmodWritable(copy);
    await copyFile(join(src, p.with), join(copy, p.file));
    mod += `\nreplace ${p.module} => ${copy}\n`;
  }
  await writeFile(join(dir, 'go.mod'), mod);
  await copyFile(join(src, 'go.sum'), join(dir, 'go.sum'));
  return join(dir, 'go.mod');
}

/** Module cache files are read-only; the copy must be writable (to patch it, and to remove it). */
async function chmodWritable(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await chmodWritable(p);
    else await chmod(p, 0o644);
  }
}
