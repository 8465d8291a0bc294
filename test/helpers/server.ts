/**
 * Test servers: a real `tailplane serve` child process on a random loopback port with its own data dir, or
 * an in-process server for tests that need the tailnet object; plus a CLI runner.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultConfig, type Config } from '../../src/config/config.ts';
import { startServer, type Server, type StartOptions } from '../../src/server.ts';
import { startPostgres, type Postgres } from './postgres.ts';

export const repoRoot = resolve(import.meta.dirname, '..', '..');
const bin = join(repoRoot, 'bin', 'tailplane.js');

export function tempDir(prefix = 'tailplane-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * TAILPLANE_TEST_STORE=postgres runs every server of this test process on PostgreSQL: one throw-away cluster
 * per process, one database per data dir (a server restarted on the same data dir finds its tailnet again).
 */
export const testStore = process.env.TAILPLANE_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';
let testPostgres: Promise<Postgres> | undefined;
const databases = new Map<string, string>();

/** The store settings for a server on `dataDir` as environment variables ({} for SQLite, the default). */
export async function testStoreEnv(dataDir: string): Promise<Record<string, string>> {
  if (testStore === 'sqlite') return {};
  testPostgres ??= startPostgres().then((pg) => (pg.untilExit(), pg));
  const pg = await testPostgres;
  let url = databases.get(dataDir);
  if (!url) databases.set(dataDir, (url = pg.database(`t${databases.size + 1}`)));
  return { TAILPLANE_STORE_TYPE: 'postgres', TAILPLANE_STORE_POSTGRES_URL: url };
}

export interface ChildServer {
  readonly url: string;
  readonly dataDir: string;
  readonly apiKey: string;
  readonly process: ChildProcess;
  /** Everything the server wrote to stderr so far (its structured log). */
  log(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `tailplane serve` as a child process and waits for its "listening on" line. */
export async function spawnServer(opts: { dataDir?: string; env?: Record<string, string>; args?: string[]; listen?: string; startMs?: number } = {}): Promise<ChildServer> {
  const dataDir = opts.dataDir ?? tempDir();
  const storeEnv = await testStoreEnv(dataDir);
  const child = spawn(process.execPath, [bin, 'serve', '--listen', opts.listen ?? '127.0.0.1:0', '--data-dir', dataDir, ...(opts.args ?? [])], {
    cwd: dataDir,
    // STUN on a random port, so servers of different tests never collide on 3478.
    // Metrics off unless a test asks: the default 127.0.0.1:9090 may belong to a real Prometheus exporter.
    env: { ...process.env, TAILPLANE_LOG_LEVEL: 'info', TAILPLANE_DERP_STUN_LISTEN_ADDR: '127.0.0.1:0', TAILPLANE_METRICS_LISTEN_ADDR: '', ...storeEnv, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const url = await new Promise<string>((res, rej) => {
    const startMs = opts.startMs ?? 20_000;
    const timer = setTimeout(() => rej(new Error(`server did not start in ${startMs / 1000} s:\n${log}`)), startMs);
    // Stops looking once found: matching the whole log again on every later chunk grew with the log (5 s of the
    // bench's load generator at 10,000 nodes, whose server logs every registration).
    const check = () => {
      const m = /tailplane listening on (http:\/\/[^\s"]+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        child.stderr!.off('data', check);
        res(m[1]!);
      }
    };
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`server exited with ${code}:\n${log}`));
    });
  });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return {
    url,
    dataDir,
    apiKey: readFileSync(join(dataDir, 'admin-api-key'), 'utf8').trim(),
    process: child,
    log: () => log,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Starts a server in this process on a random port. */
export async function inProcessServer(overrides: Partial<Config> = {}, options: StartOptions = {}): Promise<Server & { dataDir: string; apiKey: string }> {
  const dataDir = overrides.dataDir ?? tempDir();
  const defaults = defaultConfig();
  const derp = { ...defaults.derp, stunListenAddr: '127.0.0.1:0' };
  const storeEnv = await testStoreEnv(dataDir);
  const store = storeEnv.TAILPLANE_STORE_POSTGRES_URL
    ? { type: 'postgres' as const, postgres: { ...defaults.store.postgres, url: storeEnv.TAILPLANE_STORE_POSTGRES_URL } }
    : defaults.store;
  const config: Config = { ...defaults, listenAddr: '127.0.0.1:0', dataDir, derp, log: { level: 'silent' }, metrics: { listenAddr: '' }, store, ...overrides };
  const server = await startServer(config, options);
  return Object.assign(server, { dataDir, apiKey: readFileSync(join(dataDir, 'admin-api-key'), 'utf8').trim() });
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the `tailplane` CLI against a server. */
export function cli(server: { url: string; apiKey: string }, ...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [bin, ...args], {
    env: { ...process.env, TAILPLANE_URL: server.url, TAILPLANE_API_KEY: server.apiKey },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs the CLI without blocking this process: needed against an in-process server, which could not answer
 * while `cli` (spawnSync) holds the event loop.
 */
export function cliAsync(server: { url: string; apiKey: string }, ...args: string[]): Promise<CliResult> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, TAILPLANE_URL: server.url, TAILPLANE_API_KEY: server.apiKey },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((res, rej) => {
    child.once('error', rej);
    child.once('close', (status) => res({ status, stdout, stderr }));
  });
}

/** A fetch against the admin API with the server's key (or another one). */
export async function api(
  server: { url: string; apiKey: string },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any }> {
  const res = await fetch(server.url + path, {
    method,
    headers: {
      authorization: `Bearer ${server.apiKey}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: res.status, json };
}
