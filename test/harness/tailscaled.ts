/** Runs real tailscaled daemons (userspace networking, one state dir and socket each) and drives them with the tailscale CLI. */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerBinaries, type PeerBinaries } from '../peers/build.ts';

/** Environment every daemon gets: no log upload, no port mapping, network assumed up, DERP over plain HTTP. */
export const baseDaemonEnv: Readonly<Record<string, string>> = {
  TS_NO_LOGS_NO_SUPPORT: 'true',
  TS_DISABLE_PORTMAPPER: '1',
  TS_ASSUME_NETWORK_UP_FOR_TEST: '1',
  TS_DEBUG_USE_DERP_HTTP: '1',
  // Never reach the public control plane or its captive-portal check from a test.
  TS_PANIC_IF_HIT_MAIN_CONTROL: '1',
  TS_NETCHECK_GENERATE_204_URL: 'http://127.0.0.1:9/generate_204',
  TS_DEBUG_LOG_RATE: 'all',
};
/** Deadline for a daemon to answer on its socket after starting. */
const startDeadlineMs = 30_000;
/** Default deadline for one CLI command. */
const cliDeadlineMs = 30_000;
/** `tailscale up` may wait for a map and DERP; give it longer. */
const upDeadlineMs = 90_000;
/** Grace period between SIGTERM and SIGKILL on stop. */
const stopGraceMs = 5_000;
/** How often waitFor re-checks its predicate. */
const pollMs = 250;

/** The values waitFor treats as "not yet". */
type Falsy = false | null | undefined | 0 | '';

/** Output of one CLI run. */
export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** A CLI command still running, e.g. an interactive `up` that prints an auth URL and waits. */
export interface RunningCommand {
  /** Output so far. */
  output(): string;
  /** Resolves with the first login URL printed, or rejects at the deadline or when the command ends without one. */
  authUrl(deadlineMs?: number): Promise<string>;
  readonly done: Promise<CommandResult>;
  cancel(): void;
}

export interface UpOptions {
  readonly loginServer: string;
  readonly authKey?: string;
  readonly hostname: string;
  readonly extraArgs?: readonly string[];
  readonly timeoutMs?: number;
}

/** The parts of `tailscale status --json` tests use; the rest is kept as unknown fields. */
export interface Status {
  BackendState: string;
  AuthURL?: string;
  TailscaleIPs?: string[] | null;
  Self?: { HostName?: string; DNSName?: string; TailscaleIPs?: string[] | null; Online?: boolean; [k: string]: unknown };
  Peer?: Record<string, { HostName?: string; DNSName?: string; TailscaleIPs?: string[] | null; Online?: boolean; CurAddr?: string; Relay?: string; [k: string]: unknown }> | null;
  Health?: string[] | null;
  [k: string]: unknown;
}

export interface DaemonOptions {
  /** Short name, used for its directory and in messages. */
  readonly name: string;
  /** Extra environment, e.g. `{ TS_DEBUG_ALWAYS_USE_DERP: '1' }`. */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra tailscaled flags. */
  readonly args?: readonly string[];
}

/** One running tailscaled and its CLI. */
export interface Daemon {
  readonly name: string;
  readonly dir: string;
  readonly socket: string;
  readonly logFile: string;
  /** `127.0.0.1:<port>` of its SOCKS5 proxy into the tailnet. */
  readonly socksAddr: string;
  /** `127.0.0.1:<port>` of its outbound HTTP proxy into the tailnet. */
  readonly httpProxyAddr: string;
  pid(): number | undefined;
  /** Runs `tailscale --socket=… <args>` with a deadline. */
  cli(args: readonly string[], timeoutMs?: number): Promise<CommandResult>;
  /** Starts a CLI command and returns while it runs. */
  startCli(args: readonly string[], timeoutMs?: number): RunningCommand;
  /** `tailscale up --login-server … --hostname … [--auth-key …] --reset …`, to completion. */
  up(options: UpOptions): Promise<CommandResult>;
  /** The same `up`, returned while running, to read the printed auth URL of an interactive login. */
  startUp(options: UpOptions): RunningCommand;
  status(): Promise<Status>;
  /** One `tailscale ping` (`--c=1 --until-direct=false`, or extraArgs instead); stdout has `pong from …`. */
  ping(target: string, options?: { timeoutMs?: number; extraArgs?: readonly string[] }): Promise<CommandResult>;
  /** The node's Tailscale IPs, IPv4 first. */
  ip(): Promise<string[]>;
  /** Polls until the predicate returns a truthy value; fails with `what` and the log tail at the deadline. */
  waitFor<T>(predicate: () => T | Promise<T>, deadlineMs: number, what: string): Promise<Exclude<T, Falsy>>;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
  /** SIGKILL now. */
  kill(): void;
  /** Stops and starts again with the same state dir, socket and ports. */
  restart(): Promise<void>;
  /** The last lines of the daemon log. */
  logTail(lines?: number): string;
  /** Prints the log tail to stderr; call it when a test fails. */
  dumpLogs(lines?: number): void;
}

export interface Harness {
  start(options: DaemonOptions): Promise<Daemon>;
  startMany(count: number, options?: Omit<DaemonOptions, 'name'> & { prefix?: string }): Promise<Daemon[]>;
  readonly daemons: readonly Daemon[];
  /** Kills every daemon and removes the root dir (unless keepDirs). Always call it, e.g. in `after`. */
  cleanup(): Promise<void>;
}

export interface HarnessOptions {
  readonly binaries?: PeerBinaries;
  /** Keep state dirs and logs after cleanup, for debugging. */
  readonly keepDirs?: boolean;
}

/** Reserves a free loopback TCP port by binding port 0 and releasing it. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
  });
}

/** Runs a command with a deadline (SIGKILL when exceeded), collecting its output. */
export function runCommand(cmd: string, args: readonly string[], timeoutMs: number, env?: NodeJS.ProcessEnv): RunningCommand {
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());
  child.stdout.on('data', (b: Buffer) => ((stdout += b.toString()), notify()));
  child.stderr.on('data', (b: Buffer) => ((stderr += b.toString()), notify()));
  const timer = setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), timeoutMs);
  let finished = false;
  const done = new Promise<CommandResult>((resolveDone) => {
    const finish = (code: number | null) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolveDone({ code, stdout, stderr, timedOut });
      notify();
    };
    child.on('error', (err) => ((stderr += `\nspawn ${cmd}: ${err.message}`), finish(null)));
    child.on('close', (code) => finish(code));
  });
  const output = () => stdout + stderr;
  return {
    output,
    done,
    cancel: () => void child.kill('SIGKILL'),
    authUrl(deadlineMs = 30_000) {
      return new Promise<string>((resolveUrl, reject) => {
        const check = () => {
          const m = /(https?:\/\/\S+\/(?:register|a|login|auth)\S*)/.exec(output());
          if (m) return settle(() => resolveUrl(m[1]!));
          if (finished) settle(() => reject(new Error(`${cmd} ${args.join(' ')} ended without printing an auth URL:\n${output()}`)));
        };
        const timer2 = setTimeout(() => settle(() => reject(new Error(`no auth URL within ${deadlineMs} ms; output so far:\n${output()}`))), deadlineMs);
        const settle = (f: () => void) => {
          clearTimeout(timer2);
          waiters.delete(check);
          f();
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Creates a harness whose daemons all live under one temp dir; short paths keep unix socket names valid. */
export function createHarness(options: HarnessOptions = {}): Harness {
  const bins = options.binaries ?? peerBinaries();
  for (const b of [bins.tailscale, bins.tailscaled]) {
    if (!existsSync(b)) throw new Error(`${b} missing: run \`node --import tsx test/peers/build.ts\` first`);
  }
  const root = mkdtempSync(join(tmpdir(), 'tp-'));
  const daemons: Daemon[] = [];
  const killAll = () => daemons.forEach((d) => d.kill());
  process.once('exit', killAll);

  return {
    daemons,
    async start(opts) {
      const d = await startDaemon(bins, join(root, opts.name), opts);
      daemons.push(d);
      return d;
    },
    async startMany(count, opts = {}) {
      const started: Daemon[] = [];
      for (let i = 1; i <= count; i++) started.push(await this.start({ ...opts, name: `${opts.prefix ?? 'n'}${i}` }));
      return started;
    },
    async cleanup() {
      await Promise.all(daemons.map((d) => d.stop()));
      process.removeListener('exit', killAll);
      if (!options.keepDirs) rmSync(root, { recursive: true, force: true });
    },
  };
}

async function startDaemon(bins: PeerBinaries, dir: string, opts: DaemonOptions): Promise<Daemon> {
  const socket = join(dir, 'tailscaled.sock');
  const logFile = join(dir, 'tailscaled.log');
  const socksAddr = `127.0.0.1:${await freePort()}`;
  const httpProxyAddr = `127.0.0.1:${await freePort()}`;
  const args = [
    '--tun=userspace-networking',
    `--statedir=${dir}`,
    `--socket=${socket}`,
    '--port=0',
    `--socks5-server=${socksAddr}`,
    `--outbound-http-proxy-listen=${httpProxyAddr}`,
    ...(opts.args ?? []),
  ];
  const env = { ...process.env, ...baseDaemonEnv, TS_LOGS_DIR: dir, TS_PARENT_DEATH_FD: '3', ...opts.env };
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const logTail = (lines = 80) => {
    if (!existsSync(logFile)) return '(no log yet)';
    return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
  };
  const cliArgs = (a: readonly string[]) => [`--socket=${socket}`, ...a];
  const cli = (a: readonly string[], timeoutMs = cliDeadlineMs) => runCommand(bins.tailscale, cliArgs(a), timeoutMs).done;
  const startCli = (a: readonly string[], timeoutMs = cliDeadlineMs) => runCommand(bins.tailscale, cliArgs(a), timeoutMs);

  const waitFor = async <T>(predicate: () => T | Promise<T>, deadlineMs: number, what: string): Promise<Exclude<T, Falsy>> => {
    const deadline = Date.now() + deadlineMs;
    let last: unknown;
    for (;;) {
      try {
        const v = await predicate();
        if (v) return v as Exclude<T, Falsy>;
        last = v;
      } catch (err) {
        last = err;
      }
      if (Date.now() >= deadline) {
        const detail = last instanceof Error ? last.message : JSON.stringify(last);
        throw new Error(`${opts.name}: timed out after ${deadlineMs} ms waiting for ${what} (last: ${detail})\n--- ${opts.name} log tail ---\n${logTail(40)}`);
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  };

  const status = async (): Promise<Status> => {
    const r = await cli(['status', '--json']);
    try {
      return JSON.parse(r.stdout) as Status;
    } catch {
      throw new Error(`${opts.name}: status --json gave no JSON (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
    }
  };

  const launch = async () => {
    mkdirSync(dir, { recursive: true });
    const log = openSync(logFile, 'a');
    // fd 3 is a pipe tailscaled reads until EOF: if this process dies, so do its daemons.
    const c = spawn(bins.tailscaled, args, { stdio: ['ignore', log, log, 'pipe'], env });
    closeSync(log);
    // Unreferenced, so a test that forgets cleanup cannot hang the runner; the pipe then takes the daemon down.
    c.unref();
    (c.stdio[3] as { unref?: () => void } | null)?.unref?.();
    child = c;
    exited = new Promise((r) => c.once('exit', () => r()));
    c.on('error', () => {});
    let gone = false;
    c.once('exit', () => (gone = true));
    await waitFor(
      async () => {
        if (gone) throw new Error(`tailscaled exited early (code ${c.exitCode}, signal ${c.signalCode})`);
        return existsSync(socket) && (await status()).BackendState;
      },
      startDeadlineMs,
      'tailscaled to answer on its socket',
    ).catch((err: Error) => {
      c.kill('SIGKILL');
      throw err;
    });
  };

  const kill = () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), stopGraceMs);
    await exited;
    clearTimeout(timer);
  };
  const upArgs = (o: UpOptions) => [
    'up',
    `--login-server=${o.loginServer}`,
    `--hostname=${o.hostname}`,
    ...(o.authKey ? [`--auth-key=${o.authKey}`] : []),
    '--reset',
    ...(o.extraArgs ?? []),
  ];

  await launch();
  return {
    name: opts.name,
    dir,
    socket,
    logFile,
    socksAddr,
    httpProxyAddr,
    pid: () => child?.pid,
    cli,
    startCli,
    up: (o) => cli(upArgs(o), o.timeoutMs ?? upDeadlineMs),
    startUp: (o) => startCli(upArgs(o), o.timeoutMs ?? upDeadlineMs),
    status,
    ping: (target, o = {}) => {
      const timeoutMs = o.timeoutMs ?? 10_000;
      const perPing = `--timeout=${Math.max(1, Math.round(timeoutMs / 1000))}s`;
      return cli(['ping', perPing, ...(o.extraArgs ?? ['--c=1', '--until-direct=false']), target], timeoutMs + 5_000);
    },
    async ip() {
      const r = await cli(['ip']);
      if (r.code !== 0) throw new Error(`${opts.name}: tailscale ip failed: ${r.stderr.trim()}`);
      return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    },
    waitFor,
    stop,
    kill,
    async restart() {
      await stop();
      await launch();
    },
    logTail,
    dumpLogs(lines = 80) {
      process.stderr.write(`--- ${opts.name} tailscaled log (${logFile}), last ${lines} lines ---\n${logTail(lines)}\n--- end ${opts.name} ---\n`);
    },
  };
}
