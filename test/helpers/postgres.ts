/**
 * A real PostgreSQL 15 for tests: a throw-away cluster in a temporary data dir on a free loopback port, with
 * trust authentication. PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres`
 * system user (which Debian's package creates). Debian's postgresql-15 is installed when missing.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureAptPackage } from './apt.ts';
import { freePort } from '../harness/tailscaled.ts';

const bin = '/usr/lib/postgresql/15/bin';

export interface Postgres {
  /** A connection URL for a fresh database of its own (each call of `database()` makes another). */
  readonly url: string;
  readonly port: number;
  /** Creates another empty database and returns its URL. */
  database(name: string): string;
  /** Runs SQL with psql (in `database`, default postgres), synchronously (between two steps of a test that must not yield), and returns its output. */
  psql(sql: string, database?: string): string;
  /** Stops the server (fast shutdown); `start()` brings it back on the same port with the same data. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its data dir. */
  destroy(): Promise<void>;
  /**
   * Lets this process exit while the server runs (for a cluster shared by a whole test file): it is shut down
   * and its data dir removed when the process exits.
   */
  untilExit(): void;
}

/** Commands run as the cluster's owner: `postgres` when we are root, ourselves otherwise. */
function asOwner(cmd: string, args: string[]): [string, string[]] {
  // setpriv execs in place (no parent process left in between), so signals reach PostgreSQL itself.
  return process.getuid?.() === 0 ? ['/usr/bin/setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', cmd, ...args]] : [cmd, args];
}

function run(cmd: string, args: string[]): string {
  const [c, a] = asOwner(cmd, args);
  return execFileSync(c, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `durable` keeps PostgreSQL's fsync on (benchmarks); tests turn it off, as they throw the data away. */
export async function startPostgres(opts: { durable?: boolean } = {}): Promise<Postgres> {
  ensureAptPackage(join(bin, 'postgres'), 'postgresql-15');
  const dir = mkdtempSync(join(tmpdir(), 'tailplane-pg-'));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    const { uid, gid } = statSync('/var/lib/postgresql', { throwIfNoEntry: false }) ?? { uid: 101, gid: 104 };
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  let child: ChildProcess | undefined;

  const start = async () => {
    const [c, a] = asOwner(join(bin, 'postgres'), [
      '-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`,
      '-c', `fsync=${opts.durable ? 'on' : 'off'}`, '-c', 'max_connections=300',
    ]);
    const proc = spawn(c, a, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let log = '';
    proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        run(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-q']);
        return;
      } catch {
        if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`PostgreSQL did not start:\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGINT'); // fast shutdown: disconnects clients, as a restart under load would
    await exited;
  };

  await start();
  const database = (name: string) => {
    run(join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', name]);
    return `postgres://postgres@127.0.0.1:${port}/${name}`;
  };
  return {
    url: database('tailplane'),
    port,
    database,
    psql: (sql, database = 'postgres') => run(join(bin, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', database, '-Atc', sql]),
    start,
    stop,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    untilExit() {
      const proc = child!;
      proc.unref();
      (proc.stderr as unknown as { unref(): void }).unref();
      process.once('exit', () => {
        proc.kill('SIGQUIT'); // immediate shutdown; the data dir goes once the server has gone
        spawn('/bin/sh', ['-c', `while kill -0 ${proc.pid} 2>/dev/null; do sleep 0.2; done; rm -rf '${dir}'`], { detached: true, stdio: 'ignore' }).unref();
      });
    },
  };
}
