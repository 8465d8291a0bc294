/**
 * Presence across a restart (control/resume.ts): the nodes connected when the server stopped cleanly are online
 * at the next start until they reconnect or the grace ends, then offline with the stop as last seen; a damaged
 * file starts every node offline, with a warning. Real Noise, HTTP/2 and zstd map frames, a real SQLite file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import { test } from 'node:test';
import { createFrameDecoder } from '../../src/control/frames.ts';
import { generateKeyPair, type KeyPair } from '../../src/control/noise/primitives.ts';
import { inProcessServer, tempDir } from '../helpers/server.ts';
import { dialNoise, h2Request, h2Session } from './noise-client.ts';

type Server = Awaited<ReturnType<typeof inProcessServer>>;
const noDerp = { enabled: false, regionId: 999, regionCode: 'x', stunListenAddr: '', mapPath: '' };
const start = (dataDir: string, resumeGraceMs?: number) => inProcessServer({ dataDir, derp: noDerp }, { resumeGraceMs, handshakeWorkers: 0 });
const hex = (prefix: string) => `${prefix}:${randomBytes(32).toString('hex')}`;

interface Client {
  readonly machine: KeyPair;
  readonly nodeKey: string;
  /** Peers of the stream's first map, by name: Online as the map says. */
  readonly peers: Map<string, boolean>;
  readonly session: http2.ClientHttp2Session;
}

/** Connects as a node (registering it with `authKey` the first time) and waits for its first map. */
async function connect(server: Server, name: string, prior?: Client, authKey?: string): Promise<Client> {
  const { publicKey } = (await (await fetch(`${server.url}/key?v=130`)).json()) as { publicKey: string };
  const machine = prior?.machine ?? generateKeyPair();
  const nodeKey = prior?.nodeKey ?? hex('nodekey');
  const session = h2Session(await dialNoise(Number(new URL(server.url).port), Buffer.from(publicKey.slice(5), 'hex'), { machine }));
  if (authKey) {
    const reg = await h2Request(session, '/machine/register', JSON.stringify({ Version: 130, NodeKey: nodeKey, Auth: { AuthKey: authKey }, Hostinfo: { Hostname: name } }));
    assert.equal(reg.status, 200);
  }
  const stream = session.request({ ':method': 'POST', ':path': '/machine/map', 'content-type': 'application/json' });
  stream.end(JSON.stringify({ Version: 130, NodeKey: nodeKey, DiscoKey: hex('discokey'), Stream: true, KeepAlive: true, Compress: 'zstd', Hostinfo: { Hostname: name } }));
  const decoder = createFrameDecoder();
  const first = await new Promise<{ Peers?: { Name: string; Online?: boolean }[] }>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      const [map] = decoder.push(chunk);
      if (map) resolve(map as never);
    });
    stream.on('error', reject);
  });
  const peers = new Map((first.Peers ?? []).map((p) => [p.Name.split('.')[0]!, p.Online === true]));
  return { machine, nodeKey, peers, session };
}

test('nodes connected at a clean stop stay online after the restart until they reconnect or the grace ends', async () => {
  const dataDir = tempDir();
  let server = await start(dataDir);
  const user = server.tailnet.users.create({ name: 'resume' });
  const authKey = () => server.tailnet.preAuthKeys.create({ userId: user.id }).key;
  const a = await connect(server, 'a', undefined, authKey());
  const b = await connect(server, 'b', undefined, authKey());
  const c = await connect(server, 'c', undefined, authKey());
  const ids = Object.fromEntries(server.tailnet.nodes.list().map((n) => [n.hostname, n.id]));
  assert.ok([ids.a, ids.b, ids.c].every((id) => server.tailnet.nodes.isOnline(id!)));
  // c leaves before the stop: it is not one to resume.
  c.session.destroy();
  await waitFor(() => !server.tailnet.nodes.isOnline(ids.c!), 'c offline after its grace');
  for (const x of [a, b]) x.session.destroy();
  await server.close();
  assert.ok(existsSync(join(dataDir, 'connected-at-stop.json')), 'the stop wrote which nodes were connected');
  const stoppedBy = Date.now();

  server = await start(dataDir, 1_500);
  try {
    assert.ok(!existsSync(join(dataDir, 'connected-at-stop.json')), 'read once: a crash after this start resumes nothing');
    const nodes = server.tailnet.nodes;
    assert.deepEqual([nodes.isOnline(ids.a!), nodes.isOnline(ids.b!), nodes.isOnline(ids.c!)], [true, true, false]);
    assert.deepEqual([nodes.isConnected(ids.a!), nodes.isConnected(ids.b!)], [false, false], 'shown online, not connected');
    // a is back first: its map shows b online (b has not reconnected yet) and c offline.
    const a2 = await connect(server, 'a', a);
    assert.deepEqual(Object.fromEntries(a2.peers), { b: true, c: false });
    assert.ok(nodes.isConnected(ids.a!));
    // b never comes back: once the grace ends it is offline, last seen at the stop, not at the grace's end.
    await waitFor(() => !nodes.isOnline(ids.b!), 'b offline once the grace ended');
    assert.ok(nodes.isOnline(ids.a!), 'a reconnected: it stays online');
    const lastSeen = Date.parse(nodes.get(ids.b!).lastSeen!);
    assert.ok(lastSeen <= stoppedBy, `b last seen at the stop (${new Date(lastSeen).toISOString()})`);
    a2.session.destroy();
  } finally {
    await server.close();
  }
});

test('a damaged file of nodes to resume starts every node offline, and the server still starts', async () => {
  const dataDir = tempDir();
  let server = await start(dataDir);
  const user = server.tailnet.users.create({ name: 'damaged' });
  const a = await connect(server, 'a', undefined, server.tailnet.preAuthKeys.create({ userId: user.id }).key);
  a.session.destroy();
  await server.close();
  writeFileSync(join(dataDir, 'connected-at-stop.json'), '{"stoppedAt": "yesterday", "nodes": [1');
  server = await start(dataDir);
  try {
    assert.deepEqual(server.tailnet.nodes.list().map((n) => server.tailnet.nodes.isOnline(n.id)), [false]);
    assert.ok(!existsSync(join(dataDir, 'connected-at-stop.json')), 'the damaged file is removed');
  } finally {
    await server.close();
  }
});

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
