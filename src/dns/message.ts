/**
 * The DNS wire format (RFC 1035) as far as an authoritative responder needs it: parse a query's header and
 * question, and build a response with A, AAAA, TXT, NS and SOA records. Parsing never throws: anything
 * malformed comes back as null and is dropped by the caller.
 */
import { isIP } from 'node:net';

export const rrType = { A: 1, NS: 2, SOA: 6, TXT: 16, AAAA: 28, OPT: 41 } as const;
export const rcode = { noError: 0, formErr: 1, servFail: 2, nxDomain: 3, notImp: 4, refused: 5 } as const;

const headerSize = 12;
const classIN = 1;
/** Names longer than this (in wire form) are invalid (RFC 1035 §3.1). */
const maxNameWire = 255;
/** A TXT character-string holds at most 255 bytes; longer values are split into several. */
const maxCharString = 255;
/** Without EDNS a UDP answer must fit in 512 bytes (RFC 1035 §4.2.1). */
const maxUdpPlain = 512;

export interface Query {
  readonly id: number;
  /** The RD bit, echoed in the response. */
  readonly recursionDesired: boolean;
  readonly opcode: number;
  /** Lower-cased, without the final dot. */
  readonly name: string;
  /** The name exactly as asked (case kept), echoed in the question section. */
  readonly rawName: string;
  readonly type: number;
  readonly qclass: number;
  /** The UDP payload size the client announced with EDNS (OPT), or 512 without. */
  readonly udpSize: number;
}

export type DnsRecord =
  | { readonly name: string; readonly type: 'A' | 'AAAA'; readonly ttl: number; readonly value: string }
  | { readonly name: string; readonly type: 'TXT'; readonly ttl: number; readonly value: string }
  | { readonly name: string; readonly type: 'NS'; readonly ttl: number; readonly value: string }
  | {
      readonly name: string;
      readonly type: 'SOA';
      readonly ttl: number;
      readonly mname: string;
      readonly rname: string;
      readonly serial: number;
      /** Also the negative-caching TTL (RFC 2308). */
      readonly minimum: number;
    };

/** Reads a possibly compressed name at `off`; returns it and the offset after it, or null when malformed. */
function readName(buf: Buffer, off: number): { name: string; next: number } | null {
  const labels: string[] = [];
  let next = -1;
  let wire = 0;
  for (let jumps = 0; jumps < 64; ) {
    if (off >= buf.length) return null;
    const len = buf[off]!;
    if (len === 0) {
      return { name: labels.join('.'), next: next < 0 ? off + 1 : next };
    }
    if ((len & 0xc0) === 0xc0) {
      if (off + 1 >= buf.length) return null;
      if (next < 0) next = off + 2;
      off = ((len & 0x3f) << 8) | buf[off + 1]!;
      jumps++;
      continue;
    }
    if ((len & 0xc0) !== 0 || off + 1 + len > buf.length) return null;
    wire += len + 1;
    if (wire > maxNameWire) return null;
    const label = buf.toString('latin1', off + 1, off + 1 + len);
    // A dot inside a label would make "a.b" (one label) read as two: such a name matches nothing of ours.
    if (label.includes('.')) return null;
    labels.push(label);
    off += 1 + len;
  }
  return null;
}

/** Parses a query; null for anything that is not a well-formed query with exactly one question. */
export function parseQuery(buf: Buffer): Query | null {
  if (buf.length < headerSize) return null;
  const flags = buf.readUInt16BE(2);
  if (flags & 0x8000) return null; // a response, not a query
  if (buf.readUInt16BE(4) !== 1) return null;
  const q = readName(buf, headerSize);
  if (!q || q.next + 4 > buf.length) return null;
  const type = buf.readUInt16BE(q.next);
  const qclass = buf.readUInt16BE(q.next + 2);
  return {
    id: buf.readUInt16BE(0),
    recursionDesired: (flags & 0x0100) !== 0,
    opcode: (flags >> 11) & 0xf,
    name: q.name.toLowerCase(),
    rawName: q.name,
    type,
    qclass,
    udpSize: ednsUdpSize(buf, q.next + 4),
  };
}

/** The UDP size of an OPT record in the additional section, if the query has one (answer and authority are empty in a query). */
function ednsUdpSize(buf: Buffer, off: number): number {
  const skip = buf.readUInt16BE(6) + buf.readUInt16BE(8);
  const additional = buf.readUInt16BE(10);
  for (let i = 0; i < skip + additional; i++) {
    const n = readName(buf, off);
    if (!n || n.next + 10 > buf.length) return maxUdpPlain;
    const type = buf.readUInt16BE(n.next);
    if (type === rrType.OPT && i >= skip) return Math.max(maxUdpPlain, buf.readUInt16BE(n.next + 2));
    off = n.next + 10 + buf.readUInt16BE(n.next + 8);
  }
  return maxUdpPlain;
}

function encodeName(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  const parts = labels.map((l) => {
    const b = Buffer.from(l, 'latin1');
    return Buffer.concat([Buffer.from([b.length]), b]);
  });
  return Buffer.concat([...parts, Buffer.from([0])]);
}

function rdata(r: DnsRecord): Buffer {
  switch (r.type) {
    case 'A':
      return Buffer.from(r.value.split('.').map(Number));
    case 'AAAA':
      return ipv6Bytes(r.value);
    case 'TXT': {
      const bytes = Buffer.from(r.value, 'utf8');
      const chunks: Buffer[] = [];
      for (let i = 0; i === 0 || i < bytes.length; i += maxCharString) {
        const c = bytes.subarray(i, i + maxCharString);
        chunks.push(Buffer.from([c.length]), c);
      }
      return Buffer.concat(chunks);
    }
    case 'NS':
      return encodeName(r.value);
    case 'SOA': {
      const nums = Buffer.alloc(20);
      // serial, refresh, retry, expire, minimum
      [r.serial, 3600, 600, 86400, r.minimum].forEach((v, i) => nums.writeUInt32BE(v >>> 0, i * 4));
      return Buffer.concat([encodeName(r.mname), encodeName(r.rname), nums]);
    }
  }
}

function ipv6Bytes(ip: string): Buffer {
  if (isIP(ip) !== 6) throw new Error(`not an IPv6 address: ${ip}`);
  const [head, tail = ''] = ip.split('::');
  const groups = (s: string) => (s ? s.split(':') : []);
  const h = groups(head!);
  const t = ip.includes('::') ? groups(tail) : [];
  const all = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function encodeRecord(r: DnsRecord): Buffer {
  const data = rdata(r);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(rrType[r.type], 0);
  fixed.writeUInt16BE(classIN, 2);
  fixed.writeUInt32BE(r.ttl >>> 0, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([encodeName(r.name), fixed, data]);
}

export interface Answer {
  readonly rcode: number;
  /** Authoritative answer (AA bit): set for names in the responder's zone. */
  readonly authoritative: boolean;
  readonly answers?: readonly DnsRecord[];
  readonly authority?: readonly DnsRecord[];
}

/**
 * The response to `q`. With `maxSize` (UDP), an answer that does not fit is sent empty with the TC bit, so
 * the client retries over TCP.
 */
export function buildResponse(q: Query, a: Answer, maxSize = Infinity): Buffer {
  const answers = (a.answers ?? []).map(encodeRecord);
  const authority = (a.authority ?? []).map(encodeRecord);
  const question = Buffer.concat([encodeName(q.rawName), u16(q.type), u16(q.qclass)]);
  const header = (truncated: boolean, an: number, ns: number) => {
    const h = Buffer.alloc(headerSize);
    h.writeUInt16BE(q.id, 0);
    let flags = 0x8000 | ((q.opcode & 0xf) << 11) | (a.rcode & 0xf);
    if (a.authoritative) flags |= 0x0400;
    if (truncated) flags |= 0x0200;
    if (q.recursionDesired) flags |= 0x0100;
    h.writeUInt16BE(flags, 2);
    h.writeUInt16BE(1, 4);
    h.writeUInt16BE(an, 6);
    h.writeUInt16BE(ns, 8);
    return h;
  };
  const full = Buffer.concat([header(false, answers.length, authority.length), question, ...answers, ...authority]);
  if (full.length <= maxSize) return full;
  return Buffer.concat([header(true, 0, 0), question]);
}

const u16 = (v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
};
