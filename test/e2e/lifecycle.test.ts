/**
 * The seed user's day-to-day with real clients (tailscaled v1.102.5, userspace networking): a subnet router
 * approved by hand, then by autoApprovers; HA failover between two routers; tags granted only to their
 * owners; MagicDNS names and extra records; ephemeral nodes cleaned up; expired and deleted nodes cut off.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { createHarness, type Daemon } from '../harness/tailscaled.ts';
import { api, cli, spawnServer, type ChildServer } from '../helpers/server.ts';
import { withLogs } from '../helpers/failure.ts';
import { echoesThrough } from '../helpers/socks.ts';

const run = promisify(execFile);
const harness = createHarness();
/** An address only the subnet routers "reach": on one host it is on lo, so listener() checks who dialed. */
const subnetIp = '10.99.0.1';
const prefix = '10.99.0.0/24';
const serverEnv = {
  TAILPLANE_DERP_STUN_LISTEN_ADDR: '127.0.0.1:0',
  TAILPLANE_DNS_BASE_DOMAIN: 'tail.example',
  TAILPLANE_NODE_EPHEMERAL_INACTIVITY_SECONDS: '3',
};
let server: ChildServer;
let authKey: string;
let client: Daemon;
let r1: Daemon;
let r2: Daemon;
let listener: Server;
let port: number;
/** Pids of tailscaled daemons whose connections the subnet listener serves (the routers). */
const routerPids = new Set<number>();
/** Pid of the process that opened each accepted connection, in order. */
const dialers: number[] = [];

const policy = (autoApprove: boolean) => `{
  "tagOwners": { "tag:router": ["alice@example.com"], "tag:other": ["bob@example.com"] },
  "acls": [{ "action": "accept", "src": ["*"], "dst": ["*:*"] }],
  ${autoApprove ? `"autoApprovers": { "routes": { "${prefix}": ["tag:router"] } },` : ''}
}`;

/** The pid owning the client end of an accepted connection (from `ss -p`). */
async function dialerPid(sock: Socket): Promise<number | undefined> {
  const { stdout } = await run('ss', ['-tnpH', `sport = :${sock.remotePort} and dport = :${port}`]);
  const m = /pid=(\d+)/.exec(stdout);
  return m ? Number(m[1]) : undefined;
}

before(async () => {
  execFileSync('ip', ['addr', 'add', `${subnetIp}/32`, 'dev', 'lo']);
  listener = createServer(async (sock) => {
    sock.on('error', () => {});
    const pid = await dialerPid(sock).catch(() => undefined);
    dialers.push(pid ?? 0);
    // Only traffic that came through a subnet router is served; a direct dial from the host is refused.
    if (pid !== undefined && routerPids.has(pid)) sock.pipe(sock);
    else sock.destroy();
  });
  await new Promise<void>((r) => listener.listen(0, subnetIp, r));
  port = (listener.address() as { port: number }).port;
  server = await spawnServer({ env: serverEnv });
  await api(server, 'POST', '/api/v1/user', { name: 'alice', email: 'alice@example.com' });
  await api(server, 'POST', '/api/v1/user', { name: 'bob', email: 'bob@example.com' });
  authKey = (await api(server, 'POST', '/api/v1/preauthkey', { user: '1', reusable: true })).json.preAuthKey.key;
  assert.equal((await api(server, 'PUT', '/api/v1/policy', { policy: policy(false) })).status, 200);
});

after(async () => {
  listener?.close();
  await harness.cleanup();
  await server?.stop();
  try {
    execFileSync('ip', ['addr', 'del', `${subnetIp}/32`, 'dev', 'lo']);
  } catch {
    // Already gone.
  }
});


async function join(name: string, extraArgs: string[] = [], key = authKey, hostname = name): Promise<Daemon> {
  const d = await harness.start({ name });
  const r = await d.up({ loginServer: server.url, authKey: key, hostname, extraArgs, timeoutMs: 90_000 });
  assert.equal(r.code, 0, `tailscale up for ${name}: ${r.stderr}${r.stdout}`);
  return d;
}


type RouteJson = { prefix: string; routers: { name: string; approved: boolean; primary: boolean; advertised: boolean }[] };
const routesList = (): RouteJson[] => {
  const r = cli(server, 'routes', 'list', '-o', 'json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as RouteJson[];
};
const routersOf = (p: string) => routesList().find((r) => r.prefix === p)?.routers ?? [];
const nodesJson = () => JSON.parse(cli(server, 'nodes', 'list', '-o', 'json').stdout) as { givenName: string; tags: string[]; online: boolean; expiry: string | null; user: unknown }[];

test('a subnet route works only once approved, and routes list shows its router as primary', async () => {
  await withLogs(harness, () => server.log(), 'subnet', async () => {
    client = await join('client', ['--accept-routes']);
    r1 = await join('r1', [`--advertise-routes=${prefix}`]);
    routerPids.add(r1.pid()!);
    await client.waitFor(() => routersOf(prefix).some((r) => r.name === 'r1' && r.advertised), 15_000, 'r1 advertises the prefix');
    const before = routersOf(prefix);
    assert.deepEqual(before.map((r) => [r.name, r.approved, r.primary]), [['r1', false, false]]);
    const table = cli(server, 'routes', 'list').stdout;
    assert.match(table, /Prefix\s+Router/);
    assert.match(table, new RegExp(`${prefix.replace(/\./g, '\\.')}\\s+r1`));
    // Not approved: the client does not route the prefix into the tailnet (its direct dial is refused).
    assert.equal(await echoesThrough(client.socksAddr, subnetIp, port, { connectMs: 5_000, replyMs: 4_000 }), false, 'unapproved route must not carry traffic');
    assert.ok(!routerPids.has(dialers.at(-1)!), 'the failed attempt did not come through r1');

    assert.equal(cli(server, 'nodes', 'approve-routes', 'r1', prefix).status, 0);
    const t0 = Date.now();
    await client.waitFor(() => echoesThrough(client.socksAddr, subnetIp, port, { connectMs: 5_000, replyMs: 4_000 }), 30_000, 'the subnet through r1');
    console.log(`# approved route usable after ${Date.now() - t0} ms`);
    assert.equal(dialers.at(-1), r1.pid(), 'the connection was opened by r1');
    assert.deepEqual(routersOf(prefix).map((r) => [r.name, r.approved, r.primary]), [['r1', true, true]]);
    assert.match(cli(server, 'nodes', 'list-routes').stdout, /r1/, 'nodes list-routes still works');
  });
});

test('--advertise-tags: owned tags make a tagged node, auto-approved by policy; unowned tags are refused', async () => {
  await withLogs(harness, () => server.log(), 'tags', async () => {
    const refused = await harness.start({ name: 'badtag' });
    const r = await refused.up({ loginServer: server.url, authKey, hostname: 'badtag', extraArgs: ['--advertise-tags=tag:other'], timeoutMs: 60_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /requested tags \[tag:other\] are invalid or not permitted: user "alice" does not own tag "tag:other": its tagOwners rule at policy\.hujson:2:\d+ allows bob@example\.com/);
    await refused.stop();
    assert.ok(!nodesJson().some((n) => n.givenName === 'badtag'), 'no node for a refused registration');

    assert.equal((await api(server, 'PUT', '/api/v1/policy', { policy: policy(true) })).status, 200);
    r2 = await join('r2', ['--advertise-tags=tag:router', `--advertise-routes=${prefix}`]);
    routerPids.add(r2.pid()!);
    const node = nodesJson().find((n) => n.givenName === 'r2')!;
    assert.deepEqual(node.tags, ['tag:router']);
    assert.equal(node.user, null, 'a tagged node belongs to its tags, not to alice');
    assert.equal(node.expiry, null, 'tagged nodes do not expire by default');
    await client.waitFor(() => routersOf(prefix).find((r) => r.name === 'r2')?.approved, 15_000, 'r2 auto-approved');
    // r1 stays primary while it is online.
    assert.deepEqual(routersOf(prefix).map((r) => [r.name, r.approved, r.primary]), [['r1', true, true], ['r2', true, false]]);
    // Removing an auto-approved route by hand does not stick, and the CLI says why.
    const cleared = cli(server, 'nodes', 'approve-routes', 'r2', '-r', '');
    assert.equal(cleared.status, 0, cleared.stderr);
    assert.match(cleared.stdout, /^node r2 approved routes: 10\.99\.0\.0\/24\n10\.99\.0\.0\/24 stay approved: the policy's autoApprovers approve them/);
    // The table: rows by id, and a connected node was last seen now.
    const rows = cli(server, 'nodes', 'list').stdout.trim().split('\n').slice(1);
    const ids = rows.map((l) => Number(l.split(/\s+/)[0]));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
    for (const name of ['client', 'r1', 'r2']) assert.match(rows.find((l) => l.split(/\s+/)[2] === name) ?? '', /\snow\s/, `${name} is connected`);
  });
});

test('HA failover: the primary router stops and the other takes over within seconds', async () => {
  await withLogs(harness, () => server.log(), 'failover', async () => {
    await r1.stop();
    const t0 = Date.now();
    await client.waitFor(() => routersOf(prefix).find((r) => r.name === 'r2')?.primary, 30_000, 'r2 primary');
    const primaryMs = Date.now() - t0;
    await client.waitFor(() => echoesThrough(client.socksAddr, subnetIp, port, { connectMs: 5_000, replyMs: 4_000 }), 30_000, 'the subnet through r2');
    console.log(`# failover: r2 primary after ${primaryMs} ms, traffic through r2 after ${Date.now() - t0} ms`);
    assert.equal(dialers.at(-1), r2.pid(), 'the connection was opened by r2');
    assert.equal(cli(server, 'nodes', 'delete', 'r1').status, 0);
  });
});

test('MagicDNS: a client resolves peer names and an extra record set with the CLI', async () => {
  await withLogs(harness, () => server.log(), 'dns', async () => {
    const r2ip = (await r2.ip())[0]!;
    const q = await client.waitFor(async () => {
      const res = await client.cli(['dns', 'query', 'r2.tail.example.']);
      return res.stdout.includes(r2ip) ? res : undefined;
    }, 15_000, 'r2.tail.example resolves');
    assert.match(q.stdout, new RegExp(r2ip.replace(/\./g, '\\.')));
    const set = cli(server, 'dns', 'set', '--extra-record', 'db.tail.example=A:100.64.99.9', '--split-dns', 'corp.example=10.0.0.53');
    assert.equal(set.status, 0, set.stderr);
    // The table shows records and split DNS the way the flags take them.
    assert.match(set.stdout, /^extraRecords: db\.tail\.example=A:100\.64\.99\.9$/m);
    assert.match(cli(server, 'dns', 'get').stdout, /^splitDns: corp\.example=10\.0\.0\.53$/m);
    const got = JSON.parse(cli(server, 'dns', 'get', '-o', 'json').stdout).dns;
    assert.deepEqual(got.extraRecords, [{ name: 'db.tail.example', type: 'A', value: '100.64.99.9' }]);
    assert.deepEqual(got.splitDns, { 'corp.example': ['10.0.0.53'] });
    await client.waitFor(async () => (await client.cli(['dns', 'query', 'db.tail.example.'])).stdout.includes('100.64.99.9'), 15_000, 'extra record resolves');
    // A second node with the same hostname gets a suffixed name.
    const dup = await join('dup', [], authKey, 'r2');
    assert.ok(nodesJson().some((n) => n.givenName === 'r2-1'), 'hostname collision gets a suffix');
    await dup.stop();
    assert.equal(cli(server, 'nodes', 'delete', 'r2-1').status, 0);
  });
});

test('an ephemeral node is deleted a few seconds after it goes offline', async () => {
  await withLogs(harness, () => server.log(), 'ephemeral', async () => {
    const key = (await api(server, 'POST', '/api/v1/preauthkey', { user: '1', ephemeral: true })).json.preAuthKey.key;
    const eph = await join('eph', [], key);
    await client.waitFor(async () => Object.values((await client.status()).Peer ?? {}).some((p) => p.HostName === 'eph'), 15_000, 'client sees eph');
    await eph.stop();
    const t0 = Date.now();
    await client.waitFor(() => !nodesJson().some((n) => n.givenName === 'eph'), 30_000, 'eph deleted');
    console.log(`# ephemeral node deleted ${Date.now() - t0} ms after stopping (3 s grace + 3 s timeout)`);
    await client.waitFor(async () => !Object.values((await client.status()).Peer ?? {}).some((p) => p.HostName === 'eph'), 10_000, 'client drops eph');
  });
});

test('an expired node goes to NeedsLogin and its peers see it expired; a deleted node must log in again', async () => {
  await withLogs(harness, () => server.log(), 'expiry', async () => {
    const exp = await join('exp');
    const expIp = (await exp.ip())[0]!;
    await client.waitFor(async () => /pong/.test((await client.ping(expIp, { timeoutMs: 5_000 })).stdout), 30_000, 'client pings exp');
    const r = cli(server, 'nodes', 'expire', 'exp');
    assert.equal(r.status, 0, r.stderr);
    await exp.waitFor(async () => (await exp.status()).BackendState === 'NeedsLogin', 15_000, 'exp NeedsLogin');
    await client.waitFor(async () => {
      const peer = Object.values((await client.status()).Peer ?? {}).find((p) => p.HostName === 'exp');
      return peer?.Expired === true;
    }, 15_000, 'client sees exp expired');
    assert.doesNotMatch((await client.ping(expIp, { timeoutMs: 3_000 })).stdout, /pong/, 'expired peer is cut off');
    // Disabling expiry is possible from the CLI too.
    assert.equal(JSON.parse(cli(server, 'nodes', 'expire', 'exp', '--disable', '-o', 'json').stdout).expiry, null);
    await exp.stop();

    const del = await join('del');
    await del.waitFor(async () => (await del.status()).BackendState === 'Running', 15_000, 'del running');
    assert.equal(cli(server, 'nodes', 'delete', 'del').status, 0);
    await del.waitFor(async () => (await del.status()).BackendState === 'NeedsLogin', 15_000, 'deleted node NeedsLogin');
    await del.stop();
  });
});
