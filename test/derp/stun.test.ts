/** STUN: parsing Tailscale's binding request, the XOR-MAPPED-ADDRESS answer, and a live UDP round trip. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { bindingResponse, createStunServer, parseBindingRequest } from '../../src/derp/stun.ts';

/** A request laid out like tailscale.com/net/stun.Request: SOFTWARE "tailnode", then FINGERPRINT. */
function tailscaleRequest(txId: Buffer): Buffer {
  const head = Buffer.alloc(20 + 12);
  head.writeUInt16BE(0x0001, 0);
  head.writeUInt16BE(12 + 8, 2);
  head.writeUInt32BE(0x2112a442, 4);
  txId.copy(head, 8);
  head.writeUInt16BE(0x8022, 20);
  head.writeUInt16BE(8, 22);
  head.write('tailnode', 24);
  const fp = Buffer.alloc(8);
  fp.writeUInt16BE(0x8028, 0);
  fp.writeUInt16BE(4, 2);
  fp.writeUInt32BE((crc32(head) ^ 0x5354554e) >>> 0, 4);
  return Buffer.concat([head, fp]);
}

/** Decodes XOR-MAPPED-ADDRESS the way net/stun.ParseResponse does. */
function decodeResponse(b: Buffer): { txId: Buffer; family: number; port: number; ip: Buffer } {
  assert.equal(b.readUInt16BE(0), 0x0101);
  assert.equal(b.readUInt16BE(2), b.length - 20);
  assert.equal(b.readUInt16BE(20), 0x0020);
  const family = b[25]!;
  const ip = Buffer.from(b.subarray(28, 28 + (family === 1 ? 4 : 16)));
  for (let i = 0; i < ip.length; i++) ip[i]! ^= b[4 + i]!;
  return { txId: b.subarray(8, 20), family, port: b.readUInt16BE(26) ^ 0x2112, ip };
}

test('parses a Tailscale binding request and checks its fingerprint', () => {
  const tx = randomBytes(12);
  const req = tailscaleRequest(tx);
  assert.deepEqual(parseBindingRequest(req), tx);
  const bad = Buffer.from(req);
  bad[bad.length - 1]! ^= 1;
  assert.equal(parseBindingRequest(bad), null);
});

test('ignores what is not a well-formed binding request', () => {
  const req = tailscaleRequest(randomBytes(12));
  const cases = [
    req.subarray(0, 19), // short
    req.subarray(0, req.length - 4), // length field disagrees
    Buffer.concat([req, Buffer.alloc(4)]),
    Buffer.alloc(2000), // oversized
    Buffer.from(req).fill(0x01, 0, 2), // not a request type
    Buffer.from(req).fill(0, 4, 8), // no magic cookie (RFC 3489)
  ];
  for (const c of cases) assert.equal(parseBindingRequest(c), null);
  // A bare request without attributes is valid RFC 5389.
  assert.ok(parseBindingRequest(req.subarray(0, 20).fill(0, 2, 4)));
});

test('XOR-MAPPED-ADDRESS for IPv4, IPv6 and v4-mapped addresses', () => {
  const tx = randomBytes(12);
  const v4 = decodeResponse(bindingResponse(tx, '192.0.2.7', 41641));
  assert.deepEqual([v4.family, v4.port, [...v4.ip]], [1, 41641, [192, 0, 2, 7]]);
  assert.deepEqual(v4.txId, tx);
  const v6 = decodeResponse(bindingResponse(tx, '2001:db8::1:2', 3478));
  assert.equal(v6.family, 2);
  assert.equal(v6.ip.toString('hex'), '20010db8000000000000000000010002');
  const mapped = decodeResponse(bindingResponse(tx, '::ffff:10.1.2.3', 1));
  assert.deepEqual([mapped.family, [...mapped.ip]], [1, [10, 1, 2, 3]]);
});

async function roundTrip(type: 'udp4' | 'udp6', host: string, port: number, msg: Buffer): Promise<Buffer | null> {
  const sock = createSocket(type);
  await new Promise<void>((r) => sock.bind(0, host, r));
  try {
    return await new Promise<Buffer | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 500);
      sock.on('message', (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      sock.send(msg, port, host);
    });
  } finally {
    sock.close();
  }
}

test('answers over UDP with the sender address, ignores garbage, on v4 and v6', async (t) => {
  const hosts = ['127.0.0.1', '::1'];
  const stun = await createStunServer({ port: 0, host: hosts }).catch(() => createStunServer({ port: 0, host: '127.0.0.1' }));
  try {
    assert.ok(stun.port > 0);
    assert.equal(await roundTrip('udp4', '127.0.0.1', stun.port, randomBytes(64)), null);
    const tx = randomBytes(12);
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const reply = await new Promise<Buffer>((resolve) => {
      sock.once('message', resolve);
      sock.send(tailscaleRequest(tx), stun.port, '127.0.0.1');
    });
    const r = decodeResponse(reply);
    assert.deepEqual([r.txId, r.family, r.port, [...r.ip]], [tx, 1, sock.address().port, [127, 0, 0, 1]]);
    sock.close();
    if (stun.addresses.some((a) => a.startsWith('[::1]'))) {
      const r6 = await roundTrip('udp6', '::1', stun.port, tailscaleRequest(randomBytes(12)));
      assert.ok(r6);
      assert.equal(decodeResponse(r6).ip.toString('hex'), '00000000000000000000000000000001');
    } else {
      t.diagnostic('no IPv6 loopback; v6 skipped');
    }
    assert.deepEqual(stun.stats(), { requests: stun.addresses.length, ignored: 1 });
  } finally {
    await stun.close();
  }
});
