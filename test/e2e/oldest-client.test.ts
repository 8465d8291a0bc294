/**
 * The oldest client tailplane supports (tailscale v1.80.3, capability version 113; test/peers/versions.json) against
 * a real server: it speaks HTTP/2 inside Noise through golang.org/x/net's transport rather than net/http's, so it
 * checks the control server's own HTTP/2 against a second Go implementation. Two nodes join, see each other and
 * ping, and a policy change reaches them on their map streams.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createHarness, type Daemon } from '../harness/tailscaled.ts';
import { api, spawnServer, type ChildServer } from '../helpers/server.ts';
import { withLogs } from '../helpers/failure.ts';
import { peerBinaries, pinnedVersions } from '../peers/build.ts';

const oldest = pinnedVersions().oldestTailscale!;
const harness = createHarness({ binaries: peerBinaries(oldest) });
let server: ChildServer;
let nodes: Daemon[] = [];

before(async () => {
  server = await spawnServer({ env: { TAILPLANE_DERP_STUN_LISTEN_ADDR: '127.0.0.1:0', TAILPLANE_DNS_BASE_DOMAIN: 'tail.example' } });
  await api(server, 'POST', '/api/v1/user', { name: 'alice', email: 'alice@example.com' });
  const authKey = (await api(server, 'POST', '/api/v1/preauthkey', { user: '1', reusable: true })).json.preAuthKey.key;
  for (const name of ['old1', 'old2']) {
    const d = await harness.start({ name });
    const r = await d.up({ loginServer: server.url, authKey, hostname: name, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `tailscale up for ${name}: ${r.stderr}${r.stdout}`);
    nodes.push(d);
  }
});

after(async () => {
  await harness.cleanup();
  await server.stop();
});

test(`tailscale ${oldest} clients join, see each other and ping directly`, async () => {
  await withLogs(harness, () => server.log(), 'oldest', async () => {
    const [a, b] = nodes as [Daemon, Daemon];
    await a.waitFor(async () => Object.values((await a.status()).Peer ?? {}).some((p) => p.DNSName === 'old2.tail.example.'), 15_000, 'old1 sees old2');
    const ip = (await b.ip())[0]!;
    const r = await a.waitFor(async () => {
      const p = await a.ping(ip, { timeoutMs: 10_000, extraArgs: ['--c=5', '--until-direct'] });
      return /pong from .* via \d/.test(p.stdout) ? p : undefined;
    }, 30_000, 'old1 pings old2 directly');
    assert.match(r.stdout, /pong from old2/);
  });
});

test(`a policy that cuts them apart reaches tailscale ${oldest} clients on their map streams`, async () => {
  await withLogs(harness, () => server.log(), 'oldest policy', async () => {
    const [a, b] = nodes as [Daemon, Daemon];
    const deny = { acls: [{ action: 'accept', src: ['alice@example.com'], dst: ['tag:none:*'] }], tagOwners: { 'tag:none': ['alice@example.com'] } };
    const set = await api(server, 'PUT', '/api/v1/policy', { policy: JSON.stringify(deny) });
    assert.equal(set.status, 200, JSON.stringify(set.json));
    await a.waitFor(async () => Object.keys((await a.status()).Peer ?? {}).length === 0, 15_000, 'old1 no longer sees old2');
    await b.waitFor(async () => Object.keys((await b.status()).Peer ?? {}).length === 0, 15_000, 'old2 no longer sees old1');
  });
});
