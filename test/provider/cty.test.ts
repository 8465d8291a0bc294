/** The cty DynamicValue codec: msgpack and JSON forms, unknowns, nulls, numbers and nested collections. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode, ExtData } from '@msgpack/msgpack';
import {
  ctyEqual,
  fromDynamic,
  fromJson,
  fromMsgpack,
  hasUnknown,
  isUnknown,
  toJson,
  toMsgpack,
  unknown,
  type CtyType,
  type CtyValue,
} from '../../provider/src/cty.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const nested: CtyType = [
  'object',
  {
    name: 'string',
    count: 'number',
    on: 'bool',
    tags: ['set', 'string'],
    routes: ['list', 'string'],
    split: ['map', ['list', 'string']],
    records: ['list', ['object', { name: 'string', value: 'string' }]],
    pair: ['tuple', ['string', 'number']],
  },
];

test('an unknown encodes as go-cty does: fixext1 type 0 with a zero byte', () => {
  assert.equal(hex(toMsgpack(unknown, 'string')), 'd40000');
  assert.ok(isUnknown(fromMsgpack(Uint8Array.from([0xd4, 0, 0]), 'string')));
});

test('every extension code decodes as unknown, including refined unknowns (ext 12)', () => {
  const refined = encode(new ExtData(12, encode(new Map([[1, false]]))));
  assert.ok(isUnknown(fromMsgpack(refined, 'string')));
  const inList = encode(['a', new ExtData(0, Uint8Array.of(0))]);
  const v = fromMsgpack(inList, ['list', 'string']) as CtyValue[];
  assert.equal(v[0], 'a');
  assert.ok(isUnknown(v[1]));
  assert.ok(hasUnknown(v));
});

test('null is msgpack nil, and an object always carries every attribute', () => {
  assert.equal(hex(toMsgpack(null, nested)), 'c0');
  const wire = decode(toMsgpack({ name: 'x' }, nested)) as Record<string, unknown>;
  assert.deepEqual(Object.keys(wire).sort(), ['count', 'name', 'on', 'pair', 'records', 'routes', 'split', 'tags']);
  assert.equal(wire.count, null);
});

test('nested lists, sets, maps, objects and tuples round-trip through msgpack', () => {
  const value = {
    name: 'web',
    count: 3,
    on: true,
    tags: ['tag:a', 'tag:b'],
    routes: ['10.0.0.0/8'],
    split: { 'corp.example': ['10.0.0.53', '10.0.0.54'] },
    records: [{ name: 'db', value: '100.64.0.9' }],
    pair: ['x', 1.5],
  };
  assert.deepEqual(fromMsgpack(toMsgpack(value, nested), nested), value);
});

test('unknowns survive a round trip at any depth', () => {
  const value = { name: unknown, count: 1, on: null, tags: unknown, routes: ['a', unknown], split: { d: unknown }, records: null, pair: null };
  const back = fromMsgpack(toMsgpack(value, nested), nested) as Record<string, CtyValue>;
  assert.ok(isUnknown(back.name));
  assert.ok(isUnknown(back.tags));
  assert.ok(isUnknown((back.routes as CtyValue[])[1]));
  assert.ok(isUnknown((back.split as Record<string, CtyValue>).d));
  assert.equal(back.on, null);
});

test('sets are deduplicated on encode and compare without order', () => {
  const wire = decode(toMsgpack(['b', 'a', 'b'], ['set', 'string']));
  assert.deepEqual(wire, ['b', 'a']);
  assert.ok(ctyEqual(['set', 'string'], ['a', 'b'], ['b', 'a']));
  assert.ok(!ctyEqual(['list', 'string'], ['a', 'b'], ['b', 'a']));
  assert.ok(!ctyEqual('string', unknown, 'a'));
});

test('numbers: ints, floats, big ints and decimal strings all decode', () => {
  assert.equal(fromMsgpack(encode(42), 'number'), 42);
  assert.equal(fromMsgpack(encode(1.25), 'number'), 1.25);
  assert.equal(fromMsgpack(encode('12.5'), 'number'), 12.5);
  assert.equal(fromMsgpack(encode(2n ** 62n, { useBigInt64: true }), 'number'), 2n ** 62n);
  assert.equal(fromMsgpack(encode('123456789012345678901234567890'), 'number'), 123456789012345678901234567890n);
  assert.equal(hex(toMsgpack(7, 'number')), '07');
});

test('dynamic values carry their JSON type', () => {
  const wire = decode(toMsgpack('hi', 'dynamic')) as [Uint8Array, unknown];
  assert.equal(Buffer.from(wire[0]).toString(), '"string"');
  assert.equal(wire[1], 'hi');
  assert.deepEqual(fromMsgpack(toMsgpack({ a: [1, 'x'] }, 'dynamic'), 'dynamic'), { a: [1, 'x'] });
});

test('JSON form: raw state converts to the type, missing attributes become null, extra ones are dropped', () => {
  const raw = Buffer.from(JSON.stringify({ name: 'web', count: 2, tags: ['t'], gone: 1 }));
  const v = fromJson(raw, nested) as Record<string, CtyValue>;
  assert.equal(v.name, 'web');
  assert.equal(v.routes, null);
  assert.ok(!('gone' in v));
  assert.deepEqual(JSON.parse(Buffer.from(toJson(v, nested)).toString()).tags, ['t']);
  assert.throws(() => toJson(unknown, 'string'), /unknown/);
});

test('a DynamicValue decodes from msgpack, or from JSON when msgpack is empty', () => {
  assert.equal(fromDynamic({ msgpack: toMsgpack('a', 'string'), json: new Uint8Array() }, 'string'), 'a');
  assert.equal(fromDynamic({ msgpack: new Uint8Array(), json: Buffer.from('"b"') }, 'string'), 'b');
  assert.equal(fromDynamic(null, 'string'), null);
});

test('decoding rejects an object attribute the schema does not have', () => {
  assert.throws(() => fromMsgpack(encode({ name: 'x', bogus: 1 }), ['object', { name: 'string' }]), /unexpected attribute "bogus"/);
});
