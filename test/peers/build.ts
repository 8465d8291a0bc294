/** Builds the pinned real test peers (tailscale, tailscaled, OpenTofu, Pebble) and every Go program under test/peers/ into the cache. */
import { ensureProtos } from '../../provider/src/proto-source.ts';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildGoProgram, peerCacheDir } from './go-build.ts';
import { ensureAptPackage } from '../helpers/apt.ts';

const peersDir = dirname(fileURLToPath(import.meta.url));
/** The tailscale commands the harness runs. */
const commands = ['tailscale', 'tailscaled'] as const;
/** A cold `go install` of tailscaled on 2 cores takes several minutes; give up well after that. */
const installTimeoutMs = 20 * 60_000;

/** Paths of the pinned tailscale CLI and daemon. */
export interface PeerBinaries {
  readonly version: string;
  readonly tailscale: string;
  readonly tailscaled: string;
}

/** The pinned versions from test/peers/versions.json. */
export function pinnedVersions(): { tailscale: string; oldestTailscale?: string; tofu: string; pebble: string } {
  return JSON.parse(readFileSync(join(peersDir, 'versions.json'), 'utf8'));
}

/** Where the pinned binaries live: `<cache>/<version>/{tailscale,tailscaled}`; they may not be built yet. */
export function peerBinaries(version: string = pinnedVersions().tailscale): PeerBinaries {
  const dir = peerCacheDir(version);
  return { version, tailscale: join(dir, 'tailscale'), tailscaled: join(dir, 'tailscaled') };
}

/** True when both pinned binaries exist. */
export function peersBuilt(version?: string): boolean {
  const b = peerBinaries(version);
  return existsSync(b.tailscale) && existsSync(b.tailscaled);
}

/** `go install`s tailscale and tailscaled at the version into the peer cache. */
export async function buildTailscale(version: string): Promise<PeerBinaries> {
  const bins = peerBinaries(version);
  if (peersBuilt(version)) {
    console.log(`[peers] tailscale ${version}: already built in ${dirname(bins.tailscale)}`);
    return bins;
  }
  await goInstall(dirname(bins.tailscale), commands.map((c) => `tailscale.com/cmd/${c}@${version}`));
  return bins;
}

/**
 * Where OpenTofu lives: v1.6 is the newest line `go install` can build (later tags carry `replace` directives).
 * The -X flag makes it a release build, so it reports "1.6.3" rather than "1.6.3-dev".
 */
export function tofuBinary(version: string = pinnedVersions().tofu): string {
  return join(peerCacheDir(`tofu-${version}`), 'tofu');
}

export async function buildTofu(version: string): Promise<string> {
  const bin = tofuBinary(version);
  if (existsSync(bin)) {
    console.log(`[peers] tofu ${version}: already built in ${dirname(bin)}`);
    return bin;
  }
  await goInstall(dirname(bin), [`github.com/opentofu/opentofu/cmd/tofu@${version}`], ['-ldflags=-X github.com/opentofu/opentofu/version.dev=no']);
  return bin;
}

/** Let's Encrypt's test ACME server, and the TLS files it serves its API with (minica CA, localhost cert). */
export interface PebbleFiles {
  readonly bin: string;
  /** The CA that signed `cert` (pebble.minica.pem): what a client must trust to talk to Pebble. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export function pebbleFiles(version: string = pinnedVersions().pebble): PebbleFiles {
  const dir = peerCacheDir(`pebble-${version}`);
  return { bin: join(dir, 'pebble'), ca: join(dir, 'certs', 'pebble.minica.pem'), cert: join(dir, 'certs', 'localhost', 'cert.pem'), key: join(dir, 'certs', 'localhost', 'key.pem') };
}

/** `go install`s Pebble, then copies its test certificates out of the module cache beside the binary. */
export async function buildPebble(version: string): Promise<PebbleFiles> {
  const files = pebbleFiles(version);
  if (existsSync(files.bin) && existsSync(files.key)) {
    console.log(`[peers] pebble ${version}: already built in ${dirname(files.bin)}`);
    return files;
  }
  await goInstall(dirname(files.bin), [`github.com/letsencrypt/pebble/v2/cmd/pebble@${version}`]);
  const modCache = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim();
  cpSync(join(modCache, 'github.com', 'letsencrypt', 'pebble', `v2@${version}`, 'test', 'certs'), join(dirname(files.bin), 'certs'), { recursive: true });
  return files;
}

/** `go install`s packages into a temp GOBIN, then moves the commands into `dir`, so a crash never leaves half a binary. */
async function goInstall(dir: string, pkgs: string[], flags: string[] = []): Promise<void> {
  const gobin = join(dir, `.gobin-${process.pid}`);
  mkdirSync(gobin, { recursive: true });
  console.log(`[peers] go install ${pkgs.join(' ')} (first run takes minutes)`);
  try {
    await runChecked('go', ['install', ...flags, ...pkgs], { cwd: dir, env: { ...process.env, GOBIN: gobin }, timeoutMs: installTimeoutMs });
    for (const c of readdirSync(gobin)) renameSync(join(gobin, c), join(dir, c));
  } finally {
    rmSync(gobin, { recursive: true, force: true });
  }
  console.log(`[peers] built into ${dir}`);
}

/** Runs a command with a deadline, passing its output through; rejects with a clear message on failure. */
function runChecked(cmd: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise();
      else reject(new Error(`${cmd} ${args.join(' ')} failed: ${signal ? `killed by ${signal} (timeout?)` : `exit code ${code}`}`));
    });
  });
}

/** Directories test/peers/<name>/ that hold a Go program (a go.mod). */
export function goProgramDirs(): string[] {
  return readdirSync(peersDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(peersDir, e.name, 'go.mod')))
    .map((e) => join(peersDir, e.name));
}

/** Path of a built test/peers/<name> program (builds it if its sources changed). */
export function peerProgram(name: string): Promise<string> {
  return buildGoProgram(join(peersDir, name), name);
}

/**
 * The Tailscale SSH tests drive the real OpenSSH client (and add a throw-away local user with useradd); a clean CI
 * machine may lack the client.
 */
function ensureSshClient(): void {
  ensureAptPackage('/usr/bin/ssh', 'openssh-client');
}

async function main(): Promise<void> {
  const { tailscale, oldestTailscale, tofu, pebble } = pinnedVersions();
  ensureSshClient();
  await buildTailscale(tailscale);
  // The oldest client supported (capability version 113) speaks HTTP/2 through golang.org/x/net, not net/http.
  if (oldestTailscale) await buildTailscale(oldestTailscale);
  // The IaC tests run once with the terraform on the PATH and once with OpenTofu.
  await buildTofu(tofu);
  // The `tailscale cert` test gets its certificate from a real ACME server.
  await buildPebble(pebble);
  for (const dir of goProgramDirs()) {
    const name = basename(dir);
    console.log(`[peers] ${name}: ${await buildGoProgram(dir, name)}`);
  }
  // The Terraform provider's protocol definitions come from the Go module cache too.
  console.log(`[peers] terraform plugin protocol: ${ensureProtos()}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: Error) => {
    console.error(`[peers] build failed: ${err.message}`);
    console.error('[peers] needs the Go toolchain (go 1.26+) and access to the Go module proxy.');
    process.exit(1);
  });
}
