/**
 * Unmodified tailscale clients decode full maps made of several zstd frames, some shared between viewers (the
 * mapper's chunks of 64 peers, and quarters of the viewer's own chunk, joined by stored frames): with 140 nodes
 * ahead of them, each client's first map carries whole shared chunks (ids 1–127) between frames of its own, and
 * both clients see all 141 peers and reach each other.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createHarness, type Daemon } from '../harness/tailscaled.ts';
import { withLogs } from '../helpers/failure.ts';
import { inProcessServer } from '../helpers/server.ts';

const harness = createHarness();
let server: Awaited<ReturnType<typeof inProcessServer>>;
const clients: Daemon[] = [];
const others = 140;

before(async () => {
  server = await inProcessServer({ derp: { enabled: true, regionId: 999, regionCode: 'tailplane', stunListenAddr: '127.0.0.1:0', mapPath: '' } });
  const t = server.tailnet;
  const user = t.users.create({ name: 'alice', email: 'alice@example.com' });
  const key = (prefix: string) => `${prefix}:${randomBytes(32).toString('hex')}`;
  // Nodes that never connect but are peers all the same (they have disco keys), filling ids 1–140.
  for (let i = 0; i < others; i++) {
    const n = t.nodes.register({ machineKey: key('mkey'), nodeKey: key('nodekey'), hostname: `idle-${i}`, hostinfo: { OS: 'linux' }, userId: user.id, tags: [], ephemeral: false, method: 'authkey' });
    t.nodes.report(n.id, { discoKey: key('discokey'), endpoints: [{ addr: `192.0.2.1:${10000 + i}`, type: 1 }] });
  }
  const authKey = t.preAuthKeys.create({ userId: user.id, reusable: true }).key;
  for (const name of ['chunk1', 'chunk2']) {
    const d = await harness.start({ name });
    const r = await d.up({ loginServer: server.url, authKey, hostname: name, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    clients.push(d);
  }
});

after(async () => {
  await harness.cleanup();
  await server.close();
});

test('clients decode multi-frame full maps: every peer listed, and they reach each other', async () => {
  await withLogs(harness, () => '(in-process server: no log)', 'multi-frame maps', async () => {
    for (const d of clients) {
      const peers = await d.waitFor(async () => {
        const p = Object.values((await d.status()).Peer ?? {});
        return p.length === others + 1 && p;
      }, 30_000, `${d.name} lists all ${others + 1} peers`);
      const names = new Set(peers.map((p) => p.DNSName?.split('.')[0]));
      for (const i of [0, 63, 64, 127, 128, others - 1]) assert.ok(names.has(`idle-${i}`), `${d.name} lists idle-${i}`);
    }
    const [a, b] = clients as [Daemon, Daemon];
    const pong = await a.waitFor(async () => {
      const r = await a.ping((await b.ip())[0]!, { timeoutMs: 10_000 });
      return r.stdout.includes('pong from') && r.stdout;
    }, 30_000, 'chunk1 pings chunk2');
    assert.match(pong, /pong from chunk2/);
  });
});
