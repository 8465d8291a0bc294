/** Pieces of JSON text with shared compressed parts: two lists stand for the same JSON exactly when their keys match. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createFrameEncoder } from '../../src/control/frames.ts';
import { appendPiece, createSharedParts, type Piece } from '../../src/control/pieces.ts';

test('same: text equal by content, shared parts by what they compress, whatever the objects', () => {
  const shared = createSharedParts(createFrameEncoder());
  const src = JSON.stringify(Array.from({ length: 40 }, (_, i) => `100.64.0.${i}`));
  const filter = (part: Buffer, ip: string): Piece[] => {
    const out: Piece[] = [];
    for (const p of ['[{"SrcIPs":', part, `,"DstPorts":[{"IP":"${ip}"`, ',"Ports":{"First":22,"Last":22}}]}]']) appendPiece(out, p);
    return out;
  };
  const a = filter(shared.part(src), '100.64.0.1');
  // A compile again: a new array of the same addresses, compressed anew into another buffer.
  const again = filter(shared.part(src), '100.64.0.1');
  assert.notEqual(a[1], again[1]);
  assert.ok(shared.same(a, again));
  assert.equal(shared.key(a), shared.key(again));
  const otherNode = filter(shared.part(src), '100.64.0.2');
  const otherSources = filter(shared.part(src.replace('100.64.0.7', '100.64.0.77')), '100.64.0.1');
  for (const b of [otherNode, otherSources, a.slice(0, 2)]) {
    assert.equal(shared.same(a, b), false);
    assert.notEqual(shared.key(a), shared.key(b));
  }
});
