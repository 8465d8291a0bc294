/** Frame encoding and the incremental frame reader, including split input and oversized headers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FrameError, FrameType, MAGIC, MAX_FRAME_LEN, createFrameReader, encodeFrame, looksLikeDisco,
} from '../../src/derp/wire.ts';

test('magic is "DERP" + the key emoji, 8 bytes', () => {
  assert.deepEqual([...MAGIC], [0x44, 0x45, 0x52, 0x50, 0xf0, 0x9f, 0x94, 0x91]);
  assert.equal(MAGIC.toString('utf8'), 'DERP🔑');
});

test('encodeFrame writes type, big-endian length, then the parts', () => {
  const f = encodeFrame(FrameType.Pong, Buffer.from([1, 2, 3]), Buffer.from([4, 5, 6, 7, 8]));
  assert.deepEqual([...f], [0x13, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
  const big = encodeFrame(FrameType.RecvPacket, Buffer.alloc(0x012345));
  assert.deepEqual([...big.subarray(0, 5)], [0x05, 0x00, 0x01, 0x23, 0x45]);
  assert.deepEqual([...encodeFrame(FrameType.KeepAlive)], [0x06, 0, 0, 0, 0]);
});

test('reader reassembles frames fed one byte at a time', () => {
  const a = encodeFrame(FrameType.SendPacket, Buffer.alloc(32, 7), Buffer.from('hello'));
  const b = encodeFrame(FrameType.Ping, Buffer.from('12345678'));
  const input = Buffer.concat([a, b]);
  const r = createFrameReader();
  const got = [];
  for (const byte of input) {
    r.push(Buffer.of(byte));
    for (let f = r.next(); f; f = r.next()) got.push(f);
  }
  assert.equal(got.length, 2);
  assert.equal(got[0]!.type, FrameType.SendPacket);
  assert.equal(got[0]!.payload.subarray(32).toString(), 'hello');
  assert.equal(got[1]!.type, FrameType.Ping);
  assert.equal(got[1]!.payload.toString(), '12345678');
  assert.equal(r.buffered, 0);
});

test('reader yields several frames from one chunk and keeps the remainder', () => {
  const frames = [encodeFrame(1, Buffer.from('a')), encodeFrame(2), encodeFrame(3, Buffer.from('ccc'))];
  const all = Buffer.concat(frames);
  const r = createFrameReader();
  r.push(all.subarray(0, all.length - 2));
  assert.deepEqual([r.next()?.type, r.next()?.type, r.next()], [1, 2, null]);
  r.push(all.subarray(all.length - 2));
  assert.equal(r.next()?.payload.toString(), 'ccc');
});

test('reader rejects an oversized frame from its header alone', () => {
  const r = createFrameReader();
  const header = Buffer.alloc(5);
  header[0] = FrameType.SendPacket;
  header.writeUInt32BE(MAX_FRAME_LEN + 1, 1);
  r.push(header);
  assert.throws(() => r.next(), FrameError);
  // Exactly the limit (a 64 KiB packet plus its 32-byte key) is fine.
  const ok = createFrameReader();
  ok.push(encodeFrame(FrameType.SendPacket, Buffer.alloc(MAX_FRAME_LEN)));
  assert.equal(ok.next()?.payload.length, MAX_FRAME_LEN);
});

test('a 0xffffffff length is rejected, not allocated', () => {
  const r = createFrameReader();
  r.push(Buffer.from([0x04, 0xff, 0xff, 0xff, 0xff]));
  assert.throws(() => r.next(), /exceeds limit/);
});

test('disco detection needs the magic and a full header', () => {
  const disco = Buffer.concat([Buffer.from('TS💬'), Buffer.alloc(32 + 24)]);
  assert.equal(looksLikeDisco(disco), true);
  assert.equal(looksLikeDisco(disco.subarray(0, disco.length - 1)), false);
  assert.equal(looksLikeDisco(Buffer.alloc(100)), false);
});
