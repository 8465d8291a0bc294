/**
 * HTTPS certificate support without a client: /machine/set-dns over the real Noise transport (own name only,
 * TXT only, bounded), the embedded responder answering over UDP (Node's c-ares resolver) and TCP, dropping
 * malformed packets, refusing names outside the zone, failing the start when its port is taken, and the
 * challenge records' lifetime.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { defaultConfig } from '../../src/config/config.ts';
import { generateKeyPair, type KeyPair } from '../../src/control/noise/primitives.ts';
import { createChallengeStore } from '../../src/dns/challenges.ts';
import { startServer } from '../../src/server.ts';
import { noisePost } from '../control/noise-client.ts';
import { inProcessServer, tempDir } from '../helpers/server.ts';

type Srv = Awaited<ReturnType<typeof inProcessServer>>;
const base = 'tail.example';
const noDerp = { enabled: false, regionId: 999, regionCode: 'x', stunListenAddr: '', mapPath: '' };
let server: Srv;
let plain: Srv;
let dnsPort: number;
const nodes: { machine: KeyPair; nodeKey: string; name: string }[] = [];

const serverKey = async (s: Srv) => {
  const key = (await (await fetch(`${s.url}/key?v=130`)).json()) as { publicKey: string };
  return Buffer.from(key.publicKey.slice('mkey:'.length), 'hex');
};

/** Posts one JSON request over a fresh Noise connection made with `machine`. */
const post = async (s: Srv, machine: KeyPair, path: string, body: unknown) =>
  noisePost(Number(new URL(s.url).port), await serverKey(s), path, body, machine);

const setDns = (s: Srv, from: (typeof nodes)[number], name: string, value = 'x'.repeat(43), type = 'TXT', nodeKey = from.nodeKey) =>
  post(s, from.machine, '/machine/set-dns', { Version: 130, NodeKey: nodeKey, Name: name, Type: type, Value: value });

const resolver = () => {
  const r = new Resolver({ timeout: 2_000, tries: 1 });
  r.setServers([`127.0.0.1:${dnsPort}`]);
  return r;
};

/** A raw query: id 0x1234, RD, one question. */
function rawQuery(name: string, type: number): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0]), tail]);
}

/** Sends DNS frames over one TCP connection; resolves with the response messages, or [] if the server closed. */
function overTcp(frames: Buffer[], expect: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(dnsPort, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const out: Buffer[] = [];
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length >= expect) sock.end();
    });
    sock.on('close', () => resolve(out));
    sock.on('error', reject);
    setTimeout(() => sock.destroy(), 3_000);
    for (const f of frames) {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(f.length);
      sock.write(Buffer.concat([len, f]));
    }
  });
}

/** One UDP datagram out; the reply, or null after 500 ms of silence. */
function overUdp(packet: Buffer): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => (sock.close(), resolve(null)), 500);
    sock.on('message', (m) => (clearTimeout(timer), sock.close(), resolve(m)));
    sock.send(packet, dnsPort, '127.0.0.1');
  });
}

before(async () => {
  const dns = { ...defaultConfig().dns, baseDomain: base };
  server = await inProcessServer({ derp: noDerp, dns, certs: { dnsListenAddr: '127.0.0.1:0' } });
  plain = await inProcessServer({ derp: noDerp, dns });
  dnsPort = server.acmeDnsPort!;
  const t = server.tailnet;
  const user = t.users.create({ name: 'alice' });
  const { key } = t.preAuthKeys.create({ userId: user.id, reusable: true });
  for (const name of ['n1', 'n2']) {
    const node = { machine: generateKeyPair(), nodeKey: `nodekey:${randomBytes(32).toString('hex')}`, name };
    const r = await post(server, node.machine, '/machine/register', { Version: 130, NodeKey: node.nodeKey, Auth: { AuthKey: key }, Hostinfo: { Hostname: name } });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    nodes.push(node);
  }
});

after(async () => {
  await server?.close();
  await plain?.close();
});

test('a node publishes its own challenge; the responder serves it over UDP and TCP', async () => {
  const [n1] = nodes as [(typeof nodes)[number]];
  const value = 'Ab3_-'.repeat(8) + 'xyz';
  const r = await setDns(server, n1, `_acme-challenge.n1.${base}`, value);
  assert.deepEqual(r, { status: 200, json: {} });
  assert.deepEqual(await resolver().resolveTxt(`_acme-challenge.n1.${base}`), [[value]]);
  const [res] = await overTcp([rawQuery(`_acme-challenge.n1.${base}`, 16)], 1);
  assert.ok(res, 'a TCP answer');
  assert.equal(res.readUInt16BE(0), 0x1234);
  assert.equal(res.readUInt16BE(2) & 0x040f, 0x0400, 'authoritative, NOERROR');
  assert.equal(res.readUInt16BE(6), 1, 'one answer');
  assert.ok(res.includes(Buffer.from(value)), 'the value is in the answer');
});

test("set-dns for another node's name, another type or a bad value is refused, and nothing is published", async () => {
  const [n1, n2] = nodes as [(typeof nodes)[number], (typeof nodes)[number]];
  const other = await setDns(server, n1, `_acme-challenge.n2.${base}`);
  assert.equal(other.status, 403);
  assert.match(other.json.error, /not this node's challenge name _acme-challenge\.n1\.tail\.example/);
  const stolenKey = await setDns(server, n1, `_acme-challenge.n2.${base}`, undefined, 'TXT', n2.nodeKey);
  assert.equal(stolenKey.status, 404, 'a node key of another machine');
  assert.equal((await setDns(server, n1, `n1.${base}`)).status, 403, 'the bare name');
  assert.equal((await setDns(server, n1, `_acme-challenge.n1.${base}`, '1.2.3.4', 'A')).status, 400);
  assert.equal((await setDns(server, n1, `_acme-challenge.n1.${base}`, 'x'.repeat(256))).status, 400);
  assert.equal((await setDns(server, n1, `_acme-challenge.n1.${base}`, 'has space')).status, 400);
  await assert.rejects(resolver().resolveTxt(`_acme-challenge.n2.${base}`), { code: 'ENOTFOUND' });
  const off = await setDns(plain, n1, `_acme-challenge.n1.${base}`);
  assert.equal(off.status, 501, 'certificates are off by default');
});

test('the responder refuses other zones and drops malformed packets without falling over', async () => {
  await assert.rejects(resolver().resolveTxt('example.com'), { code: 'EREFUSED' });
  // Node addresses are never published: n1's name exists only as the parent of its challenge (no data).
  await assert.rejects(resolver().resolve4(`n1.${base}`), { code: 'ENODATA' });
  await assert.rejects(resolver().resolve4(`nobody.${base}`), { code: 'ENOTFOUND' });
  const soa = await resolver().resolveSoa(base);
  assert.equal(soa.hostmaster, `hostmaster.${base}`);
  const junk = [
    Buffer.alloc(0),
    Buffer.from([1, 2, 3]),
    randomBytes(12),
    randomBytes(300),
    // A name that points at itself (a compression loop).
    Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 16, 0, 1]),
    // A label running past the end.
    Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 40, 97, 97]),
    // A response, not a query.
    Buffer.from([0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 1]),
  ];
  for (const p of junk) assert.equal(await overUdp(p), null, `no reply to ${p.toString('hex')}`);
  assert.deepEqual(await overTcp([randomBytes(40)], 1), [], 'a malformed TCP query closes the connection');
  const ok = await overUdp(rawQuery(`_acme-challenge.n1.${base}`, 16));
  assert.ok(ok && ok.readUInt16BE(6) === 1, 'still answering after the junk');
});

test('a taken DNS port fails the start with an error naming the setting', async () => {
  const config = { ...defaultConfig(), listenAddr: '127.0.0.1:0', dataDir: tempDir(), derp: noDerp, log: { level: 'silent' as const }, metrics: { listenAddr: '' } };
  await assert.rejects(startServer({ ...config, certs: { dnsListenAddr: `127.0.0.1:${dnsPort}` } }), /cannot listen on UDP and TCP 127\.0\.0\.1:\d+ for the ACME DNS responder: the address is already in use.*Set certs\.dns_listen_addr/);
});

test('challenge records go after their TTL, shortly after first use, and beyond four per name', () => {
  let now = 0;
  const store = createChallengeStore({ ttlMs: 600_000, usedGraceMs: 60_000, now: () => now });
  store.set('_acme-challenge.a.x', 'v1');
  now = 599_999;
  assert.deepEqual(store.serve('_acme-challenge.a.x'), ['v1']);
  now = 600_000;
  assert.deepEqual(store.serve('_acme-challenge.a.x'), [], 'expired after the TTL');
  assert.equal(store.size(), 0);
  store.set('_acme-challenge.a.x', 'v2');
  store.serve('_acme-challenge.a.x');
  now += 59_999;
  assert.deepEqual(store.serve('_acme-challenge.a.x'), ['v2']);
  now += 1;
  assert.deepEqual(store.serve('_acme-challenge.a.x'), [], 'gone a minute after its first answer');
  for (const v of ['a', 'b', 'c', 'd', 'e']) store.set('_acme-challenge.a.x', v);
  assert.deepEqual(store.serve('_acme-challenge.a.x'), ['b', 'c', 'd', 'e']);
});
