/** A position-tracking HuJSON (JSON with comments and trailing commas) parser producing a syntax tree. */
import { PolicyError, type Pos } from './errors.ts';

export type JsonNode = JsonObject | JsonArray | JsonScalar;

export interface JsonEntry {
  readonly key: string;
  readonly keyPos: Pos;
  readonly value: JsonNode;
}
export interface JsonObject {
  readonly kind: 'object';
  readonly pos: Pos;
  readonly entries: readonly JsonEntry[];
}
export interface JsonArray {
  readonly kind: 'array';
  readonly pos: Pos;
  readonly items: readonly JsonNode[];
}
export interface JsonScalar {
  readonly kind: 'string' | 'number' | 'boolean' | 'null';
  readonly pos: Pos;
  readonly value: string | number | boolean | null;
}

/** Parses HuJSON text; throws PolicyError at the first syntax error. Duplicate object keys are errors. */
export function parseHujson(text: string, file: string): JsonNode {
  const cur = cursor(text, file);
  cur.skip();
  const node = parseValue(cur);
  cur.skip();
  if (!cur.done()) cur.fail('unexpected content after the top-level value');
  return node;
}

/** Far deeper than any real policy; deeper input would overflow the stack of this parser and of what walks its tree. */
export const maxPolicyDepth = 64;

interface Cursor {
  readonly text: string;
  i: number;
  /** Objects and arrays open at the current position. */
  depth: number;
  pos(): Pos;
  done(): boolean;
  peek(): string;
  skip(): void;
  fail(detail: string, at?: Pos): never;
}

function cursor(text: string, file: string): Cursor {
  let line = 1;
  let lineStart = 0;
  const c: Cursor = {
    text,
    i: 0,
    depth: 0,
    pos: () => ({ line, col: c.i - lineStart + 1 }),
    done: () => c.i >= text.length,
    peek: () => text[c.i] ?? '',
    fail: (detail, at) => {
      throw new PolicyError(file, at ?? c.pos(), detail);
    },
    skip: () => {
      for (;;) {
        const ch = text[c.i];
        if (ch === '\n') {
          c.i++;
          line++;
          lineStart = c.i;
        } else if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\uFEFF') c.i++;
        else if (ch === '/' && text[c.i + 1] === '/') {
          while (c.i < text.length && text[c.i] !== '\n') c.i++;
        } else if (ch === '/' && text[c.i + 1] === '*') {
          const start = c.pos();
          c.i += 2;
          for (;;) {
            if (c.i >= text.length) c.fail('unterminated /* comment', start);
            if (text[c.i] === '*' && text[c.i + 1] === '/') break;
            if (text[c.i] === '\n') {
              line++;
              lineStart = c.i + 1;
            }
            c.i++;
          }
          c.i += 2;
        } else return;
      }
    },
  };
  return c;
}

function parseValue(c: Cursor): JsonNode {
  const pos = c.pos();
  const ch = c.peek();
  if (ch === '{') return parseObject(c);
  if (ch === '[') return parseArray(c);
  if (ch === '"') return { kind: 'string', pos, value: parseString(c) };
  if (ch === '-' || (ch >= '0' && ch <= '9')) return parseNumber(c);
  for (const [word, value] of [['true', true], ['false', false], ['null', null]] as const) {
    if (c.text.startsWith(word, c.i)) {
      c.i += word.length;
      return { kind: value === null ? 'null' : 'boolean', pos, value };
    }
  }
  if (c.done()) c.fail('unexpected end of input');
  return c.fail(`unexpected character ${JSON.stringify(ch)}`);
}

/** Enters an object or array, refusing input nested deeper than maxPolicyDepth at the opening bracket. */
function enter(c: Cursor): void {
  if (++c.depth > maxPolicyDepth) c.fail(`nested deeper than ${maxPolicyDepth} levels`);
}

function parseObject(c: Cursor): JsonObject {
  const pos = c.pos();
  enter(c);
  c.i++;
  const entries: JsonEntry[] = [];
  const seen = new Map<string, Pos>();
  for (;;) {
    c.skip();
    if (c.peek() === '}') break;
    if (c.peek() !== '"') c.fail(c.done() ? 'unterminated object' : 'expected a quoted key or "}"');
    const keyPos = c.pos();
    const key = parseString(c);
    const first = seen.get(key);
    if (first) c.fail(`duplicate key ${JSON.stringify(key)} (first defined at ${first.line}:${first.col})`, keyPos);
    seen.set(key, keyPos);
    c.skip();
    if (c.peek() !== ':') c.fail('expected ":" after key');
    c.i++;
    c.skip();
    entries.push({ key, keyPos, value: parseValue(c) });
    c.skip();
    if (c.peek() === ',') c.i++;
    else if (c.peek() !== '}') c.fail(c.done() ? 'unterminated object' : 'expected "," or "}"');
  }
  c.i++;
  c.depth--;
  return { kind: 'object', pos, entries };
}

function parseArray(c: Cursor): JsonArray {
  const pos = c.pos();
  enter(c);
  c.i++;
  const items: JsonNode[] = [];
  for (;;) {
    c.skip();
    if (c.peek() === ']') break;
    if (c.done()) c.fail('unterminated array');
    items.push(parseValue(c));
    c.skip();
    if (c.peek() === ',') c.i++;
    else if (c.peek() !== ']') c.fail(c.done() ? 'unterminated array' : 'expected "," or "]"');
  }
  c.i++;
  c.depth--;
  return { kind: 'array', pos, items };
}

const escapes: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function parseString(c: Cursor): string {
  const start = c.pos();
  c.i++;
  let out = '';
  for (;;) {
    const ch = c.text[c.i];
    if (ch === undefined || ch === '\n') c.fail('unterminated string', start);
    if (ch === '"') break;
    if (ch === '\\') {
      const e = c.text[c.i + 1] ?? '';
      if (e === 'u') {
        const hex = c.text.slice(c.i + 2, c.i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) c.fail('invalid \\u escape');
        out += String.fromCharCode(parseInt(hex, 16));
        c.i += 6;
        continue;
      }
      const v = escapes[e];
      if (v === undefined) c.fail(`invalid escape "\\${e}"`);
      out += v;
      c.i += 2;
      continue;
    }
    if (ch < ' ') c.fail('control character in string');
    out += ch;
    c.i++;
  }
  c.i++;
  return out;
}

function parseNumber(c: Cursor): JsonScalar {
  const pos = c.pos();
  const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(c.text.slice(c.i, c.i + 64));
  if (!m) c.fail('invalid number');
  c.i += m[0].length;
  return { kind: 'number', pos, value: Number(m[0]) };
}
