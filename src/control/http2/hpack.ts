/**
 * HPACK (RFC 7541) for the control server's HTTP/2. The decoder is complete: Go's client indexes its headers into
 * the dynamic table and Huffman-codes them. The encoder sends only literals that are never indexed, so the
 * client's table size never matters and the server keeps no encoder state per connection.
 */
import { huffmanCodes, huffmanLengths } from './huffman.ts';

/** A header block that cannot be decoded: a connection error (COMPRESSION_ERROR). */
export class HpackError extends Error {
  override readonly name = 'HpackError';
}

/** RFC 7541 Appendix A; index 1 is the first entry. */
const staticTable: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''],
  ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''],
  ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''],
  ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''],
  ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''], ['transfer-encoding', ''],
  ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];

/** Every entry's size counts its name and value octets plus 32 (RFC 7541 4.1). */
const entryOverhead = 32;
const eos = 256;

/**
 * The Huffman code as a binary tree in one array: node n's children are at 2n and 2n+1, each the index of the
 * next node, or a leaf as -(symbol + 1); 0 means no code goes there.
 */
const huffmanTree = buildHuffmanTree();

function buildHuffmanTree(): Int32Array {
  const tree = new Int32Array(2 * 512);
  let nodes = 1;
  const add = (symbol: number, code: number, length: number) => {
    let node = 0;
    for (let bit = length - 1; bit > 0; bit--) {
      const slot = 2 * node + ((code >>> bit) & 1);
      if (tree[slot] === 0) tree[slot] = nodes++;
      node = tree[slot]!;
    }
    tree[2 * node + (code & 1)] = -(symbol + 1);
  };
  huffmanCodes.forEach((code, symbol) => add(symbol, code, huffmanLengths[symbol]!));
  add(eos, 0x3fffffff, 30);
  return tree;
}

function huffmanDecode(bytes: Buffer): string {
  const out: number[] = [];
  let node = 0;
  let depth = 0;
  let ones = true;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >>> bit) & 1;
      const next = huffmanTree[2 * node + b]!;
      depth++;
      ones &&= b === 1;
      if (next === 0) throw new HpackError('hpack: invalid Huffman code');
      if (next > 0) {
        node = next;
        continue;
      }
      if (-next - 1 === eos) throw new HpackError('hpack: EOS inside a Huffman string');
      out.push(-next - 1);
      node = 0;
      depth = 0;
      ones = true;
    }
  }
  // What is left must be padding: fewer than 8 bits, all ones (the start of EOS).
  if (depth > 7 || !ones) throw new HpackError('hpack: invalid Huffman padding');
  return Buffer.from(out).toString('latin1');
}

/** Reads HPACK's prefixed integers and string literals from one header block. */
class BlockReader {
  at = 0;
  constructor(readonly block: Buffer) {}

  get done(): boolean {
    return this.at >= this.block.length;
  }

  byte(): number {
    if (this.at >= this.block.length) throw new HpackError('hpack: header block truncated');
    return this.block[this.at++]!;
  }

  /** An integer with an N-bit prefix (RFC 7541 5.1); the first octet's other bits are the caller's. */
  integer(prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = this.byte() & max;
    if (value < max) return value;
    for (let shift = 0; ; shift += 7) {
      if (shift > 21) throw new HpackError('hpack: integer too large');
      const b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
  }

  /** A string literal (RFC 7541 5.2), as latin1 so that its length is its octet count. */
  string(): string {
    if (this.done) throw new HpackError('hpack: header block truncated');
    const huffman = (this.block[this.at]! & 0x80) !== 0;
    const length = this.integer(7);
    if (this.at + length > this.block.length) throw new HpackError('hpack: string past the header block');
    const bytes = this.block.subarray(this.at, this.at + length);
    this.at += length;
    return huffman ? huffmanDecode(bytes) : bytes.toString('latin1');
  }
}

/** One connection's decoding context: the dynamic table the client's encoder fills. */
export class HpackDecoder {
  /** Newest first: index 62 is entries[0]. */
  readonly #entries: [string, string][] = [];
  #size = 0;
  #maxSize: number;

  /** `limit` is the SETTINGS_HEADER_TABLE_SIZE this side announced (4096 unless announced otherwise). */
  constructor(readonly limit = 4096) {
    this.#maxSize = limit;
  }

  /** Decodes one complete header block into its fields, in order. */
  decode(block: Buffer): [string, string][] {
    const r = new BlockReader(block);
    const fields: [string, string][] = [];
    while (!r.done) {
      const first = block[r.at]!;
      if (first & 0x80) {
        fields.push(this.#lookup(r.integer(7)));
      } else if (first & 0x40) {
        const field = this.#literal(r, 6);
        this.#insert(field);
        fields.push(field);
      } else if (first & 0x20) {
        if (fields.length > 0) throw new HpackError('hpack: table size update after a header field');
        const size = r.integer(5);
        if (size > this.limit) throw new HpackError(`hpack: table size ${size} above the announced ${this.limit}`);
        this.#maxSize = size;
        this.#evict(0);
      } else {
        fields.push(this.#literal(r, 4)); // without indexing (0000) or never indexed (0001)
      }
    }
    return fields;
  }

  #literal(r: BlockReader, prefixBits: number): [string, string] {
    const index = r.integer(prefixBits);
    const name = index === 0 ? r.string() : this.#lookup(index)[0];
    return [name, r.string()];
  }

  #lookup(index: number): [string, string] {
    if (index === 0) throw new HpackError('hpack: index 0');
    if (index <= staticTable.length) return staticTable[index - 1] as [string, string];
    const entry = this.#entries[index - staticTable.length - 1];
    if (!entry) throw new HpackError(`hpack: index ${index} past the dynamic table`);
    return entry;
  }

  #insert(field: [string, string]): void {
    const size = field[0].length + field[1].length + entryOverhead;
    this.#evict(size);
    // An entry larger than the whole table empties it and is not added (RFC 7541 4.4).
    if (size > this.#maxSize) return;
    this.#entries.unshift(field);
    this.#size += size;
  }

  /** Drops the oldest entries until `room` more octets fit. */
  #evict(room: number): void {
    while (this.#size + room > this.#maxSize && this.#entries.length > 0) {
      const [name, value] = this.#entries.pop()!;
      this.#size -= name.length + value.length + entryOverhead;
    }
  }
}

/** :status values with a static entry of their own, sent as one octet. */
const indexedStatus = new Map<number, number>();
/** Static indexes of header names, for a literal with an indexed name. */
const staticNames = new Map<string, number>();
staticTable.forEach(([name, value], i) => {
  if (name === ':status') indexedStatus.set(Number(value), i + 1);
  if (!staticNames.has(name)) staticNames.set(name, i + 1);
});

/** Encodes a response header block: `:status`, then each header (lowercased) as a literal never indexed. */
export function encodeResponseHeaders(status: number, headers: Readonly<Record<string, string>> = {}): Buffer {
  const out: number[] = [];
  const index = indexedStatus.get(status);
  if (index !== undefined) out.push(0x80 | index);
  else literal(out, ':status', String(status));
  for (const [name, value] of Object.entries(headers)) literal(out, name.toLowerCase(), value);
  return Buffer.from(out);
}

/** A literal header field without indexing (RFC 7541 6.2.2), its name by static index where there is one. */
function literal(out: number[], name: string, value: string): void {
  const nameIndex = staticNames.get(name);
  if (nameIndex !== undefined) {
    integer(out, 4, nameIndex);
  } else {
    out.push(0x00);
    stringLiteral(out, name);
  }
  stringLiteral(out, value);
}

function stringLiteral(out: number[], text: string): void {
  const bytes = Buffer.from(text, 'latin1');
  integer(out, 7, bytes.length);
  for (const b of bytes) out.push(b);
}

/** An integer with an N-bit prefix, the rest of the first octet zero (no flags: literal, not Huffman-coded). */
function integer(out: number[], prefixBits: number, value: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(value);
    return;
  }
  out.push(max);
  for (value -= max; value >= 0x80; value = Math.floor(value / 0x80)) out.push((value % 0x80) | 0x80);
  out.push(value);
}
