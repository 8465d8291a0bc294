/**
 * A real load balancer for the high-availability tests: Debian's haproxy in TCP mode in front of several
 * `tailplane serve` replicas, with health checks (a TCP connect every 500 ms) so a killed replica leaves the
 * rotation within a second and clients reconnecting land on a live one. Config and pid live in a temporary
 * dir; the port is free. Timeouts suit map long-polls and the Noise/DERP upgrades (connections stay open for
 * minutes with keep-alives far apart). haproxy is installed when missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureAptPackage } from './apt.ts';
import { freePort } from '../harness/tailscaled.ts';

export interface Backend {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface Haproxy {
  /** The frontend clients use as `server_url` (http://127.0.0.1:port). */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** The haproxy config: one TCP frontend, least connections over the backends, health-checked. */
export function haproxyConfig(listenPort: number, backends: readonly Backend[]): string {
  return [
    'global',
    '  maxconn 4096',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    // Map streams and DERP connections are long-lived; tailscale's keep-alives come every minute or so.
    '  timeout client 10m',
    '  timeout server 10m',
    '  timeout tunnel 1h',
    `frontend tailplane`,
    `  bind 127.0.0.1:${listenPort}`,
    '  default_backend replicas',
    'backend replicas',
    // Streams are long-lived: the replica holding fewer gets the next (round robin among equals).
    '  balance leastconn',
    // A dead replica's connections are cut at once, so its clients reconnect (to another replica) right away.
    '  option redispatch',
    '  retries 2',
    '  default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions',
    ...backends.map((b) => `  server ${b.name} ${b.host}:${b.port} check`),
    '',
  ].join('\n');
}

export async function startHaproxy(backends: readonly Backend[]): Promise<Haproxy> {
  const bin = ensureAptPackage('/usr/sbin/haproxy', 'haproxy');
  const dir = mkdtempSync(join(tmpdir(), 'tailplane-haproxy-'));
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig(port, backends));
  // -db: stay in the foreground, so the test owns the process and its exit.
  const proc: ChildProcess = spawn(bin, ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const deadline = Date.now() + 10_000;
  while (!(await connects(port))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`haproxy did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
