/**
 * Headscale as a bench server, for the side-by-side comparison (issue 8): the pinned release built from the Go
 * module proxy into the peer cache, run as a child process with SQLite in a temp dir, and driven through its
 * REST API (the gRPC gateway on the main port) with an API key made by its CLI. The API rather than one CLI
 * process per call, because a CLI start-up would add to the measured policy-change latency.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { freePort } from '../../harness/tailscaled.ts';
import { peerCacheDir } from '../../peers/go-build.ts';
import { blockOf, isTagged, policyText, type PolicyKind } from '../policy.ts';
import { keyTarget, type BenchKeys, type BenchServer } from './server.ts';

const run = promisify(execFile);

export const headscaleVersion = 'v0.29.2';
const modulePath = 'github.com/juanfont/headscale';
/** A cold build of headscale on 2 cores takes about 3 minutes. */
const buildTimeoutMs = 20 * 60_000;
/** Pre-auth keys and the API key outlive any bench run. */
const keyLifetimeMs = 7 * 24 * 3600_000;

/** <peer cache>/headscale-<version>/headscale, built on first use. */
export function headscaleBinary(): string {
  return join(peerCacheDir(`headscale-${headscaleVersion}`), 'headscale');
}

/**
 * Builds the pinned headscale unless it is cached. Not `go install …@version`: that also asks the proxy for the
 * module's version list (for its deprecation check), which the proxy here refuses with 403. Downloading the
 * exact version and building its main package from the module cache gives the same binary (with
 * `headscale version` saying "dev", as Main.Version is "(devel)" for a build inside the module).
 */
export async function buildHeadscale(): Promise<string> {
  const out = headscaleBinary();
  if (existsSync(out)) return out;
  console.log(`[bench] building headscale ${headscaleVersion} from the Go module proxy (first run takes minutes)`);
  const dl = await run('go', ['mod', 'download', '-json', `${modulePath}@${headscaleVersion}`], { cwd: tmpdir(), timeout: buildTimeoutMs });
  const { Dir } = JSON.parse(dl.stdout) as { Dir: string };
  await mkdir(join(out, '..'), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    await run('go', ['build', '-o', tmp, './cmd/headscale'], { cwd: Dir, timeout: buildTimeoutMs, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`go build of headscale ${headscaleVersion} failed: ${e.stderr || e.message}`);
  }
  await rename(tmp, out);
  return out;
}


/**
 * The config: SQLite with WAL and the example config's GORM settings, policy in the database (so the API can
 * set it), a one-region DERP map from a file (no fetch from the internet, no embedded DERP/STUN), no metrics
 * or remote gRPC listener, no update check, warn-level logs. DNS mirrors tailplane's defaults (MagicDNS on, one global nameserver); everything
 * else, including the batching tunables, stays at Headscale's defaults.
 */
function writeConfig(dir: string, port: number): string {
  const derpPath = join(dir, 'derp.yaml');
  const derpNode = { name: '999a', regionid: 999, hostname: '127.0.0.1', ipv4: '127.0.0.1', stunport: -1, derpport: 443 };
  // A Map, so the region id is written as a YAML integer key (Headscale's loader rejects the string "999").
  const regions = new Map([[999, { regionid: 999, regioncode: 'bench', regionname: 'Bench', nodes: [derpNode] }]]);
  writeFileSync(derpPath, stringify({ regions }));
  const config = {
    server_url: `http://127.0.0.1:${port}`,
    listen_addr: `127.0.0.1:${port}`,
    metrics_listen_addr: '',
    grpc_listen_addr: '127.0.0.1:0',
    grpc_allow_insecure: false,
    noise: { private_key_path: join(dir, 'noise_private.key') },
    prefixes: { v4: '100.64.0.0/10', v6: 'fd7a:115c:a1e0::/48', allocation: 'sequential' },
    derp: { server: { enabled: false }, urls: [], paths: [derpPath], auto_update_enabled: false, update_frequency: '24h' },
    disable_check_updates: true,
    database: {
      type: 'sqlite',
      // config-example.yaml's values: viper has no defaults for these, and a deployment starts from that file.
      gorm: { prepare_stmt: true, parameterized_queries: true, skip_err_record_not_found: true, slow_threshold: 1000 },
      sqlite: { path: join(dir, 'db.sqlite'), write_ahead_log: true, wal_autocheckpoint: 1000 },
    },
    log: { level: 'warn', format: 'text' },
    policy: { mode: 'database' },
    dns: { magic_dns: true, base_domain: 'tailnet.internal', override_local_dns: true, nameservers: { global: ['1.1.1.1'] } },
    unix_socket: join(dir, 'headscale.sock'),
    unix_socket_permission: '0770',
    logtail: { enabled: false },
  };
  const path = join(dir, 'config.yaml');
  writeFileSync(path, stringify(config));
  return path;
}

interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

/** Starts `headscale serve` and resolves once /health answers (it pings the database, so the server is up). */
async function serve(bin: string, config: string, dir: string, url: string): Promise<Proc> {
  const child = spawn(bin, ['serve', '-c', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  // Also kept in headscale.log in the temp dir, to look into a run afterwards (warn level: it stays small).
  const file = createWriteStream(join(dir, 'headscale.log'), { flags: 'a' });
  for (const out of [child.stdout!, child.stderr!]) {
    out.on('data', (d) => (log += d));
    out.pipe(file, { end: false });
  }
  const exited = new Promise<void>((res) => child.once('close', () => (file.end(), res())));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`headscale exited with ${child.exitCode ?? child.signalCode}:\n${log}`);
    if (Date.now() > deadline) throw new Error(`headscale did not start in 20 s:\n${log}`);
    const ok = await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (ok) return { child, exited };
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** SIGTERM, then SIGKILL if its graceful shutdown has not finished in 15 s. */
async function halt(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
  await p.exited;
  clearTimeout(timer);
}

export async function startHeadscale(): Promise<BenchServer> {
  const bin = await buildHeadscale();
  const dir = mkdtempSync(join(tmpdir(), 'bench-headscale-'));
  // A fixed free port: headscale logs its configured address, not the bound one, so ":0" is no use.
  const url = `http://127.0.0.1:${await freePort()}`;
  const config = writeConfig(dir, Number(new URL(url).port));
  let proc = await serve(bin, config, dir, url);
  // The CLI talks to the server over its unix socket, which needs no key; the REST API needs one.
  const apiKey = (await run(bin, ['apikeys', 'create', '-e', '168h', '-c', config], { cwd: dir })).stdout.trim();
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`headscale ${method} ${path}: HTTP ${res.status} ${text}`);
    return JSON.parse(text);
  };
  const setPolicy = async (text: string) => void (await api('PUT', '/api/v1/policy', { policy: text }));
  return {
    name: `headscale ${headscaleVersion}`,
    target: () => keyTarget(url),
    pid: () => proc.child.pid!,
    provision: (kind, blocks) => provision(api, setPolicy, kind, blocks),
    setPolicy,
    stop: () => halt(proc),
    async start() {
      proc = await serve(bin, config, dir, url);
    },
  };
}

type Api = (method: string, path: string, body?: unknown) => Promise<any>;

/**
 * The same layout as tailplane's provisioning, in the same order. Headscale's pre-auth keys expire (1 h by
 * default from the CLI), so each gets an explicit expiry; tag-only keys (no user) make tag-owned nodes, which is
 * what tailplane's tag keys do too. The policy text is policy.ts's unchanged: Headscale's dialect accepts the
 * `user@` form, groups, tagOwners and port lists as they are.
 */
async function provision(api: Api, setPolicy: (text: string) => Promise<void>, kind: PolicyKind, blocks: number): Promise<BenchKeys> {
  const expiration = new Date(Date.now() + keyLifetimeMs).toISOString();
  const key = async (body: object): Promise<string> => (await api('POST', '/api/v1/preauthkey', { reusable: true, expiration, ...body })).preAuthKey.key;
  const admin = (await api('POST', '/api/v1/user', { name: 'admin' })).user;
  if (kind === 'allow-all') {
    // No policy set: Headscale, like tailplane, then allows all traffic.
    const [k, eph] = [await key({ user: admin.id }), await key({ user: admin.id, ephemeral: true })];
    return { node: () => k, ephemeral: () => eph };
  }
  const users: { key: string; ephemeral: string }[] = [];
  for (let k = 0; k < blocks; k++) {
    const { user } = await api('POST', '/api/v1/user', { name: `u${k}` });
    users.push({ key: await key({ user: user.id }), ephemeral: await key({ user: user.id, ephemeral: true }) });
  }
  await setPolicy(policyText(kind, blocks, 0)!);
  const tagKeys: string[] = [];
  for (let k = 0; k < blocks; k++) tagKeys.push(await key({ aclTags: [`tag:t${k}`] }));
  return {
    node: (i) => (isTagged(i) ? tagKeys[blockOf(i)]! : users[blockOf(i)]!.key),
    ephemeral: (i) => users[blockOf(i)]!.ephemeral,
  };
}
