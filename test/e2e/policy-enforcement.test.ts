/**
 * Real clients enforce the compiled policy: group:ops may reach tag:server on one port only, others on none,
 * and a policy change flips that on the live streams without any client reconnecting.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { createHarness, type Daemon } from '../harness/tailscaled.ts';
import { api, inProcessServer } from '../helpers/server.ts';
import { echoesThrough } from '../helpers/socks.ts';

const harness = createHarness();
let server: Awaited<ReturnType<typeof inProcessServer>>;
let ops: Daemon;
let dev: Daemon;
let tagged: Daemon;
let taggedIp: string;
const listeners: Server[] = [];
let ports: { ssh: number; web: number };

/** Listens on the preferred port if it is free, else on any port; echoes what it receives. */
async function listen(preferred: number): Promise<number> {
  for (const port of [preferred, 0]) {
    const s = createServer((sock) => sock.pipe(sock));
    const ok = await new Promise<boolean>((r) => {
      s.once('error', () => r(false));
      s.listen(port, '127.0.0.1', () => r(true));
    });
    if (ok) {
      listeners.push(s);
      return (s.address() as { port: number }).port;
    }
  }
  throw new Error('no port to listen on');
}

const policy = (allowedPort: number) => `{
  "groups": { "group:ops": ["ops@example.com"] },
  "tagOwners": { "tag:server": ["group:ops"] },
  "acls": [
    { "action": "accept", "src": ["group:ops"], "dst": ["tag:server:${allowedPort}"] },
  ],
}`;


const reaches = (from: Daemon, port: number) => echoesThrough(from.socksAddr, taggedIp, port);

before(async () => {
  ports = { ssh: await listen(22), web: await listen(80) };
  server = await inProcessServer({ derp: { enabled: true, regionId: 999, regionCode: 'tailplane', stunListenAddr: '127.0.0.1:0', mapPath: '' } });
  const t = server.tailnet;
  const opsUser = t.users.create({ name: 'ops', email: 'ops@example.com' });
  const devUser = t.users.create({ name: 'dev', email: 'dev@example.com' });
  t.setPolicy(policy(ports.ssh));
  const key = (userId: number | null, tags: string[] = []) => t.preAuthKeys.create({ userId, tags }).key;
  const join = async (name: string, authKey: string) => {
    const d = await harness.start({ name });
    const r = await d.up({ loginServer: server.url, authKey, hostname: name, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    return d;
  };
  tagged = await join('server1', key(null, ['tag:server']));
  ops = await join('opslaptop', key(opsUser.id));
  dev = await join('devlaptop', key(devUser.id));
  taggedIp = (await tagged.ip())[0]!;
});

after(async () => {
  await harness.cleanup();
  await server.close();
  for (const l of listeners) l.close();
});

test('group:ops reaches tag:server on the allowed port only; others reach nothing', async () => {
  try {
    await ops.waitFor(() => reaches(ops, ports.ssh), 20_000, 'ops reaches the allowed port');
    assert.equal(await reaches(ops, ports.web), false, 'ops is refused on the other port');
    assert.equal(await reaches(dev, ports.ssh), false, 'dev is refused on the allowed port');
    assert.equal(await reaches(dev, ports.web), false, 'dev is refused on the other port');
  } catch (err) {
    for (const d of harness.daemons) d.dumpLogs(30);
    throw err;
  }
});

test('a policy change flips access for the live clients without reconnecting', async () => {
  const opened = server.stats().mapStreamsOpened;
  const res = await api(server, 'PUT', '/api/v1/policy', { policy: policy(ports.web) });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  await ops.waitFor(() => reaches(ops, ports.web), 15_000, 'ops reaches the newly allowed port');
  assert.equal(await reaches(ops, ports.ssh), false, 'the old port is now refused');
  assert.equal(await reaches(dev, ports.web), false, 'dev is still refused');
  assert.equal(server.stats().mapStreamsOpened, opened, 'no client reopened its map stream');
});
