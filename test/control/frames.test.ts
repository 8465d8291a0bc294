/** Unit tests of map-response framing: u32 little-endian length + zstd frame, decoded incrementally. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import zstd from 'zstd-napi';
import { createFrameDecoder, createFrameEncoder, storedFrame } from '../../src/control/frames.ts';

test('frames are [u32 LE length][zstd frame] and decode back, across arbitrary chunking', () => {
  const enc = createFrameEncoder();
  const msgs = [{ KeepAlive: true }, { Node: { ID: 1, Name: 'a.example.' } }, { big: 'x'.repeat(300_000) }];
  const wire = Buffer.concat(msgs.map((m) => enc.encode(m)));
  const first = enc.encode(msgs[0]);
  assert.equal(first.readUInt32LE(0), first.length - 4, 'little-endian length of the compressed body');
  assert.deepEqual([...first.subarray(4, 8)], [0x28, 0xb5, 0x2f, 0xfd], 'zstd magic');

  const dec = createFrameDecoder();
  const out: unknown[] = [];
  for (let at = 0; at < wire.length; at += 777) out.push(...dec.push(wire.subarray(at, at + 777)));
  assert.deepEqual(out, msgs);
  assert.equal(dec.buffered(), 0);
  assert.deepEqual(createFrameDecoder().push(enc.frame([enc.compress('{"a":1}')])), [{ a: 1 }]);

  // One byte at a time: the length prefix itself arrives in pieces, and two frames may end in one chunk.
  const byByte = createFrameDecoder();
  const small = Buffer.concat(msgs.slice(0, 2).map((m) => enc.encode(m)));
  const got = [...small].flatMap((b) => byByte.push(Uint8Array.of(b)));
  assert.deepEqual(got, msgs.slice(0, 2));
  assert.deepEqual(createFrameDecoder().push(small), msgs.slice(0, 2));
});

test('the decoder refuses frames over its limit and corrupt zstd', () => {
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32LE(1000, 0);
  assert.throws(() => createFrameDecoder({ maxFrameSize: 999 }).push(hdr), /exceeds/);
  const bad = Buffer.concat([Buffer.from([5, 0, 0, 0]), Buffer.from('hello')]);
  assert.throws(() => createFrameDecoder().push(bad));
});

test('stored frames (one raw block, written without the compressor) decode to their text, around each size field boundary', () => {
  const d = new zstd.Decompressor();
  for (const n of [0, 1, 127, 255, 256, 257, 1000, 65_791, 65_792, 131_071]) {
    const text = 'é'.repeat(Math.floor(n / 2)) + 'x'.repeat(n % 2);
    const frame = storedFrame(text);
    assert.equal(d.decompress(frame).toString('utf8'), text, `${n} bytes`);
    assert.equal(frame.length, 4 + 1 + (n < 256 ? 1 : n < 65_792 ? 2 : 4) + 3 + Buffer.byteLength(text));
  }
  // Concatenated with a compressed frame, as in a full map: one text.
  const both = Buffer.concat([storedFrame('{"a":'), createFrameEncoder().compress('1'.repeat(500) + '}')]);
  assert.equal(d.decompress(both).toString('utf8'), `{"a":${'1'.repeat(500)}}`);
  assert.throws(() => storedFrame('x'.repeat(128 << 10)), /128 KiB/);
});
