/**
 * IP addresses and prefixes as bigints: parsing, formatting and containment for IPv4 and IPv6.
 */
import { isIP } from 'node:net';

export interface Prefix {
  readonly family: 4 | 6;
  readonly base: bigint;
  readonly bits: number;
}

const width = (family: 4 | 6) => (family === 4 ? 32 : 128);

export function ipToBigInt(ip: string): { family: 4 | 6; value: bigint } {
  const family = isIP(ip);
  if (family === 4) {
    return { family, value: ip.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n) };
  }
  if (family === 6) return { family, value: ipv6ToBigInt(ip) };
  throw new Error(`not an IP address: ${ip}`);
}

function ipv6ToBigInt(ip: string): bigint {
  let text = ip;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipToBigInt(v4[1]!).value;
    text = text.slice(0, -v4[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function bigIntToIp(value: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => Number((value >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - i * 16)) & 0xffffn).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = { start: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len && j - i > 1) best = { start: i, len: j - i };
    i = j;
  }
  if (best.start < 0) return groups.join(':');
  return `${groups.slice(0, best.start).join(':')}::${groups.slice(best.start + best.len).join(':')}`;
}

export function parsePrefix(cidr: string): Prefix {
  const slash = cidr.lastIndexOf('/');
  const ip = slash < 0 ? cidr : cidr.slice(0, slash);
  const { family, value } = ipToBigInt(ip);
  const bitsText = slash < 0 ? String(width(family)) : cidr.slice(slash + 1);
  const bits = Number(bitsText);
  if (!/^\d+$/.test(bitsText) || bits > width(family)) throw new Error(`invalid prefix length in ${cidr}`);
  return { family, base: value & mask(family, bits), bits };
}

export function mask(family: 4 | 6, bits: number): bigint {
  const w = BigInt(width(family));
  return ((1n << w) - 1n) ^ ((1n << (w - BigInt(bits))) - 1n);
}

/** The number of addresses in a prefix. */
export function prefixSize(p: Prefix): bigint {
  return 1n << BigInt(width(p.family) - p.bits);
}

export function prefixHas(p: Prefix, ip: string): boolean {
  const a = ipToBigInt(ip);
  return a.family === p.family && (a.value & mask(p.family, p.bits)) === p.base;
}

/** True when `inner` (a CIDR) lies inside `outer` (a CIDR). */
export function prefixContains(outer: string, inner: string): boolean {
  const o = parsePrefix(outer);
  const i = parsePrefix(inner);
  return o.family === i.family && i.bits >= o.bits && (i.base & mask(o.family, o.bits)) === o.base;
}

/** The canonical text of a prefix (host bits cleared), e.g. "10.0.0.0/24". */
export function formatPrefix(p: Prefix): string {
  return `${bigIntToIp(p.base, p.family)}/${p.bits}`;
}

export function isValidPrefix(cidr: string): boolean {
  try {
    parsePrefix(cidr);
    return cidr.includes('/');
  } catch {
    return false;
  }
}
