/**
 * A schema-driven codec for Terraform's DynamicValue: cty values as msgpack (with unknowns as extension
 * values) and as JSON, to and from plain JavaScript values.
 */
import { decode, encode, ExtData } from '@msgpack/msgpack';

/** A cty type in its JSON form, exactly as Terraform writes it in a schema's `type` bytes. */
export type CtyType =
  | 'string'
  | 'number'
  | 'bool'
  | 'dynamic'
  | readonly ['list' | 'set' | 'map', CtyType]
  | readonly ['object', Readonly<Record<string, CtyType>>]
  | readonly ['tuple', readonly CtyType[]];

/** A value not known until apply; there is one instance, compare with isUnknown. */
export class Unknown {
  toJSON(): string {
    return '(known after apply)';
  }
}
export const unknown: Unknown = Object.freeze(new Unknown());

export type CtyValue = null | string | number | bigint | boolean | Unknown | CtyValue[] | CtyObject;
export interface CtyObject {
  [key: string]: CtyValue;
}

export const isUnknown = (v: unknown): v is Unknown => v instanceof Unknown;

/** True when the value or anything inside it is unknown. */
export function hasUnknown(v: CtyValue): boolean {
  if (isUnknown(v)) return true;
  if (Array.isArray(v)) return v.some(hasUnknown);
  if (v !== null && typeof v === 'object') return Object.values(v).some(hasUnknown);
  return false;
}

export class CtyError extends Error {}

// go-cty writes an unrefined unknown as fixext1 type 0 with one zero byte (d4 00 00).
const unknownExt = new ExtData(0, Uint8Array.of(0));

/** Encodes a value of the given type as msgpack bytes, every object attribute present. */
export function toMsgpack(value: CtyValue, type: CtyType): Uint8Array {
  return encode(toWire(value, type, []), { useBigInt64: true });
}

/** Decodes msgpack bytes of the given type; any extension value decodes as unknown. */
export function fromMsgpack(bytes: Uint8Array, type: CtyType): CtyValue {
  if (bytes.length === 0) return null;
  return fromWire(decode(bytes, { useBigInt64: true }), type, []);
}

/** Encodes a wholly known value as Terraform's JSON form. */
export function toJson(value: CtyValue, type: CtyType): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(toJsonValue(value, type, [])));
}

/** Decodes Terraform's JSON form (raw state, JSON DynamicValues), converting to the given type. */
export function fromJson(bytes: Uint8Array, type: CtyType): CtyValue {
  if (bytes.length === 0) return null;
  return fromJsonValue(JSON.parse(new TextDecoder().decode(bytes)), type, []);
}

/** Decodes a DynamicValue message: msgpack when present, else JSON. */
export function fromDynamic(dv: { msgpack?: Uint8Array; json?: Uint8Array } | null | undefined, type: CtyType): CtyValue {
  if (!dv) return null;
  if (dv.msgpack && dv.msgpack.length > 0) return fromMsgpack(dv.msgpack, type);
  if (dv.json && dv.json.length > 0) return fromJson(dv.json, type);
  return null;
}

/** Builds a DynamicValue message; providers always answer in msgpack. */
export function toDynamic(value: CtyValue, type: CtyType): { msgpack: Buffer } {
  return { msgpack: Buffer.from(toMsgpack(value, type)) };
}

const fail = (path: string[], msg: string): never => {
  throw new CtyError(path.length > 0 ? `${path.join('.')}: ${msg}` : msg);
};

function toWire(v: CtyValue, t: CtyType, path: string[]): unknown {
  if (v === null || v === undefined) return null;
  if (isUnknown(v)) return unknownExt;
  if (t === 'dynamic') {
    const inner = inferType(v);
    return [new TextEncoder().encode(JSON.stringify(inner)), toWire(v, inner, path)];
  }
  if (t === 'string') return typeof v === 'string' ? v : primitiveString(v, path);
  if (t === 'bool') return typeof v === 'boolean' ? v : fail(path, `expected bool, got ${typeof v}`);
  if (t === 'number') return wireNumber(v, path);
  switch (t[0]) {
    case 'list':
    case 'set': {
      const items = asArray(v, path).map((x, i) => toWire(x, t[1], [...path, String(i)]));
      return t[0] === 'set' ? dedupe(items) : items;
    }
    case 'map':
      return Object.fromEntries(Object.entries(asObject(v, path)).map(([k, x]) => [k, toWire(x, t[1], [...path, k])]));
    case 'object': {
      const o = asObject(v, path);
      return Object.fromEntries(Object.entries(t[1]).map(([k, at]) => [k, toWire(o[k] ?? null, at, [...path, k])]));
    }
    case 'tuple': {
      const a = asArray(v, path);
      if (a.length !== t[1].length) fail(path, `tuple needs ${t[1].length} elements, got ${a.length}`);
      return t[1].map((et, i) => toWire(a[i]!, et, [...path, String(i)]));
    }
  }
}

function fromWire(w: unknown, t: CtyType, path: string[]): CtyValue {
  if (w === null || w === undefined) return null;
  // Every extension code means unknown (0 plain, 12 refined); the timestamp codec turns -1 into a Date.
  if (w instanceof ExtData || w instanceof Date) return unknown;
  if (t === 'dynamic') {
    const pair = w as [Uint8Array, unknown];
    if (!Array.isArray(pair) || pair.length !== 2) fail(path, 'dynamic value must be [type, value]');
    const inner = JSON.parse(new TextDecoder().decode(pair[0])) as CtyType;
    return fromWire(pair[1], inner, path);
  }
  if (t === 'string') return typeof w === 'string' ? w : fail(path, `expected string, got ${typeof w}`);
  if (t === 'bool') return typeof w === 'boolean' ? w : fail(path, `expected bool, got ${typeof w}`);
  if (t === 'number') return readNumber(w, path);
  switch (t[0]) {
    case 'list':
    case 'set':
      return asArray(w, path).map((x, i) => fromWire(x, t[1], [...path, String(i)]));
    case 'map':
      return Object.fromEntries(Object.entries(asObject(w, path)).map(([k, x]) => [k, fromWire(x, t[1], [...path, k])]));
    case 'object': {
      const o = asObject(w, path);
      const extra = Object.keys(o).find((k) => !(k in t[1]));
      if (extra !== undefined) fail(path, `unexpected attribute "${extra}"`);
      return Object.fromEntries(Object.entries(t[1]).map(([k, at]) => [k, fromWire(o[k] ?? null, at, [...path, k])]));
    }
    case 'tuple':
      return t[1].map((et, i) => fromWire(asArray(w, path)[i] ?? null, et, [...path, String(i)]));
  }
}

function toJsonValue(v: CtyValue, t: CtyType, path: string[]): unknown {
  if (v === null || v === undefined) return null;
  if (isUnknown(v)) return fail(path, 'unknown values have no JSON form');
  if (t === 'dynamic') {
    const inner = inferType(v);
    return { value: toJsonValue(v, inner, path), type: inner };
  }
  if (t === 'number') {
    const n = wireNumber(v, path);
    return typeof n === 'bigint' ? Number(n) : n;
  }
  if (typeof t === 'string') return toWire(v, t, path);
  switch (t[0]) {
    case 'list':
    case 'set':
    case 'tuple':
      return asArray(v, path).map((x, i) => toJsonValue(x, t[0] === 'tuple' ? t[1][i]! : t[1], [...path, String(i)]));
    case 'map':
      return Object.fromEntries(Object.entries(asObject(v, path)).map(([k, x]) => [k, toJsonValue(x, t[1], [...path, k])]));
    case 'object': {
      const o = asObject(v, path);
      return Object.fromEntries(Object.entries(t[1]).map(([k, at]) => [k, toJsonValue(o[k] ?? null, at, [...path, k])]));
    }
  }
}

/** Converts parsed JSON to a value of the type; object attributes missing from the JSON become null, extra ones are dropped. */
export function fromJsonValue(j: unknown, t: CtyType, path: string[] = []): CtyValue {
  if (j === null || j === undefined) return null;
  if (t === 'dynamic') {
    const d = j as { value: unknown; type: CtyType };
    return fromJsonValue(d.value, d.type, path);
  }
  if (t === 'string') return typeof j === 'string' ? j : primitiveString(j as CtyValue, path);
  if (t === 'bool') return typeof j === 'boolean' ? j : j === 'true' ? true : j === 'false' ? false : fail(path, 'expected bool');
  if (t === 'number') return readNumber(j, path);
  switch (t[0]) {
    case 'list':
    case 'set':
      return asArray(j, path).map((x, i) => fromJsonValue(x, t[1], [...path, String(i)]));
    case 'tuple':
      return t[1].map((et, i) => fromJsonValue(asArray(j, path)[i], et, [...path, String(i)]));
    case 'map':
      return Object.fromEntries(Object.entries(asObject(j, path)).map(([k, x]) => [k, fromJsonValue(x, t[1], [...path, k])]));
    case 'object': {
      const o = asObject(j, path);
      return Object.fromEntries(Object.entries(t[1]).map(([k, at]) => [k, fromJsonValue(o[k], at, [...path, k])]));
    }
  }
}

/** A best-effort type for a value stored in a dynamic attribute. */
export function inferType(v: CtyValue): CtyType {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number' || typeof v === 'bigint') return 'number';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return ['tuple', v.map(inferType)];
  if (v !== null && typeof v === 'object' && !isUnknown(v)) {
    return ['object', Object.fromEntries(Object.entries(v).map(([k, x]) => [k, inferType(x)]))];
  }
  return 'dynamic';
}

/** Deep equality under a type: sets compare without order, unknown equals only unknown. */
export function ctyEqual(t: CtyType, a: CtyValue, b: CtyValue): boolean {
  if (a === null || b === null || isUnknown(a) || isUnknown(b)) return a === b;
  if (t === 'number') return Number(a) === Number(b);
  if (typeof t === 'string') return t === 'dynamic' ? canonical(a) === canonical(b) : a === b;
  switch (t[0]) {
    case 'list':
    case 'tuple': {
      const x = a as CtyValue[];
      const y = b as CtyValue[];
      return x.length === y.length && x.every((v, i) => ctyEqual(t[0] === 'tuple' ? t[1][i]! : t[1], v, y[i]!));
    }
    case 'set': {
      const x = new Set((a as CtyValue[]).map(canonical));
      const y = new Set((b as CtyValue[]).map(canonical));
      return x.size === y.size && [...x].every((k) => y.has(k));
    }
    case 'map':
    case 'object': {
      const x = a as CtyObject;
      const y = b as CtyObject;
      const keys = t[0] === 'object' ? Object.keys(t[1]) : [...new Set([...Object.keys(x), ...Object.keys(y)])];
      const et = (k: string) => (t[0] === 'object' ? t[1][k]! : t[1]);
      return keys.every((k) => (k in x || t[0] === 'object') && (k in y || t[0] === 'object') && ctyEqual(et(k), x[k] ?? null, y[k] ?? null));
    }
  }
}

/** A stable string for a value, used for set membership. */
export function canonical(v: CtyValue): string {
  return JSON.stringify(v, (_k, x) => {
    if (typeof x === 'bigint') return x.toString();
    if (x !== null && typeof x === 'object' && !Array.isArray(x) && !(x instanceof Unknown)) {
      return Object.fromEntries(Object.entries(x).sort(([p], [q]) => (p < q ? -1 : p > q ? 1 : 0)));
    }
    return x;
  });
}

function dedupe(items: unknown[]): unknown[] {
  const seen = new Set<string>();
  return items.filter((x) => {
    if (x instanceof ExtData) return true;
    const k = canonical(x as CtyValue);
    return seen.has(k) ? false : (seen.add(k), true);
  });
}

function wireNumber(v: CtyValue, path: string[]): number | bigint | string {
  if (typeof v === 'number' || typeof v === 'bigint') return v;
  // A decimal that does not fit a float64 travels as a string, as go-cty does.
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return String(Number(v)) === v ? Number(v) : v;
  return fail(path, `expected number, got ${typeof v}`);
}

function readNumber(w: unknown, path: string[]): number | bigint {
  if (typeof w === 'number') return w;
  if (typeof w === 'bigint') return Number.isSafeInteger(Number(w)) ? Number(w) : w;
  if (typeof w === 'string' && w.trim() !== '' && !Number.isNaN(Number(w))) {
    return /^-?\d+$/.test(w) && !Number.isSafeInteger(Number(w)) ? BigInt(w) : Number(w);
  }
  return fail(path, `expected number, got ${typeof w}`);
}

function primitiveString(v: CtyValue, path: string[]): string {
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return fail(path, `expected string, got ${Array.isArray(v) ? 'array' : typeof v}`);
}

function asArray(v: unknown, path: string[]): CtyValue[] {
  return Array.isArray(v) ? (v as CtyValue[]) : fail(path, 'expected a list');
}

function asObject(v: unknown, path: string[]): Record<string, CtyValue> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
    ? (v as Record<string, CtyValue>)
    : fail(path, 'expected an object');
}
