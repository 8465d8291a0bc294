/**
 * Unmodified tailscale clients (tailscaled v1.102.5, userspace networking) against a real tailplane server:
 * join, see each other by MagicDNS name, ping directly and via the embedded DERP, carry TCP, see joins and
 * deletes live, log in interactively, and survive a server restart.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { createHarness, type Daemon } from '../harness/tailscaled.ts';
import { api, cli, spawnServer, type ChildServer } from '../helpers/server.ts';
import { withLogs } from '../helpers/failure.ts';
import { socksConnect } from '../helpers/socks.ts';

const harness = createHarness();
let server: ChildServer;
let authKey: string;
let nodes: Daemon[] = [];
const serverEnv = { TAILPLANE_DERP_STUN_LISTEN_ADDR: '127.0.0.1:0', TAILPLANE_DNS_BASE_DOMAIN: 'tail.example' };

before(async () => {
  server = await spawnServer({ env: serverEnv });
  await api(server, 'POST', '/api/v1/user', { name: 'alice', email: 'alice@example.com' });
  authKey = (await api(server, 'POST', '/api/v1/preauthkey', { user: '1', reusable: true })).json.preAuthKey.key;
});

after(async () => {
  await harness.cleanup();
  await server.stop();
});


async function join(name: string, env?: Record<string, string>): Promise<Daemon> {
  const d = await harness.start({ name, env });
  const r = await d.up({ loginServer: server.url, authKey, hostname: name, timeoutMs: 60_000 });
  assert.equal(r.code, 0, `tailscale up for ${name}: ${r.stderr}${r.stdout}`);
  return d;
}

const peerNames = async (d: Daemon) =>
  Object.values((await d.status()).Peer ?? {})
    .map((p) => p.DNSName)
    .sort();

test('three clients join with a pre-auth key and list each other by MagicDNS name', async () => {
  await withLogs(harness, () => server.log(), 'join', async () => {
    nodes = [await join('n1'), await join('n2'), await join('n3')];
    for (const d of nodes) {
      const others = nodes.filter((o) => o !== d).map((o) => `${o.name}.tail.example.`);
      await d.waitFor(async () => JSON.stringify(await peerNames(d)) === JSON.stringify(others.sort()), 15_000, `${d.name} sees ${others}`);
      assert.equal((await d.status()).BackendState, 'Running');
    }
  });
});

test('tailscale ping succeeds between every pair, directly', async () => {
  await withLogs(harness, () => server.log(), 'ping', async () => {
    for (const a of nodes) {
      for (const b of nodes) {
        if (a === b) continue;
        const ip = (await b.ip())[0]!;
        const r = await a.waitFor(async () => {
          const p = await a.ping(ip, { timeoutMs: 10_000, extraArgs: ['--c=5', '--until-direct'] });
          return /pong from .* via \d/.test(p.stdout) ? p : undefined;
        }, 30_000, `${a.name} pings ${b.name} directly`);
        assert.match(r.stdout, /pong from/);
      }
    }
  });
});

test('clients forced onto DERP ping each other through the embedded relay', async () => {
  await withLogs(harness, () => server.log(), 'derp', async () => {
    const env = { TS_DEBUG_ALWAYS_USE_DERP: '1' };
    const [d1, d2] = [await join('relay1', env), await join('relay2', env)];
    const ip = (await d2.ip())[0]!;
    const r = await d1.waitFor(async () => {
      const p = await d1.ping(ip, { timeoutMs: 10_000 });
      return /pong from .* via DERP\(tailplane\)/.test(p.stdout) ? p : undefined;
    }, 30_000, 'relay1 pings relay2 via DERP');
    assert.match(r.stdout, /via DERP\(tailplane\)/);
    await d1.stop();
    await d2.stop();
    for (const name of ['relay1', 'relay2']) assert.equal(cli(server, 'nodes', 'delete', name).status, 0);
  });
});

test('a TCP connection crosses the tailnet through the SOCKS5 proxy', async () => {
  await withLogs(harness, () => server.log(), 'tcp', async () => {
    const [a, b] = nodes as [Daemon, Daemon];
    const listener: Server = createServer((sock) => sock.pipe(sock));
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const port = (listener.address() as { port: number }).port;
    try {
      const ip = (await b.ip())[0]!;
      const sock = await socksConnect(a.socksAddr, ip, port);
      const payload = Buffer.from('hello across the tailnet '.repeat(1000));
      const echoed = await new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        let got = 0;
        sock.on('data', (c: Buffer) => {
          chunks.push(c);
          got += c.length;
          if (got >= payload.length) resolve(Buffer.concat(chunks));
        });
        sock.on('error', reject);
        sock.write(payload);
      });
      sock.destroy();
      assert.ok(echoed.equals(payload), 'bytes round-trip');
    } finally {
      listener.close();
    }
  });
});

test('a fourth client appears on the others\' existing streams within 2 s, and disappears on delete', async () => {
  await withLogs(harness, () => server.log(), 'join-live', async () => {
    const n4 = await join('n4');
    const t0 = Date.now();
    for (const d of nodes) await d.waitFor(async () => (await peerNames(d)).includes('n4.tail.example.'), 2_000, `${d.name} sees n4`);
    const joinMs = Date.now() - t0;
    assert.equal(cli(server, 'nodes', 'delete', 'n4').status, 0);
    const t1 = Date.now();
    for (const d of nodes) await d.waitFor(async () => !(await peerNames(d)).includes('n4.tail.example.'), 2_000, `${d.name} drops n4`);
    console.log(`# join visible to all peers in ${joinMs} ms; delete in ${Date.now() - t1} ms`);
    await n4.stop();
  });
});

test('interactive login: the CLI approves the auth URL and the client comes up', async () => {
  await withLogs(harness, () => server.log(), 'interactive', async () => {
    const d = await harness.start({ name: 'inter' });
    const up = d.startUp({ loginServer: server.url, hostname: 'inter', timeoutMs: 60_000 });
    const url = await up.authUrl(20_000);
    const authId = url.split('/').pop()!;
    const page = await fetch(url);
    assert.match(await page.text(), new RegExp(authId));
    // The whole URL, as a user pastes it from `tailscale up`; the CLI takes the id from its end.
    const r = cli(server, 'nodes', 'register', '--user', 'alice', '--auth-id', url);
    assert.equal(r.status, 0, r.stderr);
    const done = await up.done;
    assert.equal(done.code, 0, done.stderr + done.stdout);
    await d.waitFor(async () => (await d.status()).BackendState === 'Running', 15_000, 'inter running');
    await d.stop();
    assert.equal(cli(server, 'nodes', 'delete', 'inter').status, 0);
  });
});

test('server restart: clients reconnect with the same identity; offline once a client stops', async () => {
  await withLogs(harness, () => server.log(), 'restart', async () => {
    const ipsBefore = await Promise.all(nodes.map((d) => d.ip()));
    // SIGTERM with three clients streaming: timers and streams stop before the store closes, and the exit is clean.
    const stopped = server;
    assert.equal(await stopped.stop('SIGTERM'), 0, stopped.log());
    assert.doesNotMatch(stopped.log(), /database connection is not open|TypeError|Error:/);
    server = await spawnServer({ dataDir: server.dataDir, env: serverEnv, args: ['--listen', new URL(server.url).host] });
    // Online throughout (they were connected at the stop); connected again once each client's stream is back.
    for (const [i, d] of nodes.entries()) {
      await d.waitFor(async () => {
        const list = JSON.parse(cli(server, 'nodes', 'list', '-o', 'json').stdout) as { givenName: string; online: boolean; connected: boolean }[];
        const n = list.find((n) => n.givenName === d.name);
        assert.equal(n?.online, true, `${d.name} shown online while it reconnects`);
        return n.connected;
      }, 60_000, `${d.name} connected again`);
      assert.deepEqual(await d.ip(), ipsBefore[i]);
      assert.equal((await d.status()).BackendState, 'Running');
    }
    await nodes[2]!.stop();
    await nodes[0]!.waitFor(async () => {
      const list = JSON.parse(cli(server, 'nodes', 'list', '-o', 'json').stdout) as { givenName: string; online: boolean }[];
      return list.find((n) => n.givenName === 'n3')?.online === false;
    }, 15_000, 'n3 shown offline');
    // Ctrl-C does the same, with two clients still connected.
    assert.equal(await server.stop('SIGINT'), 0, server.log());
    assert.doesNotMatch(server.log(), /database connection is not open|TypeError|Error:/);
  });
});
