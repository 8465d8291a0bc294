/**
 * IPv4/IPv6 addresses and prefixes as bigint ranges: strict parsing (policy files), lenient CIDR parsing
 * (routes, config), containment, overlap, range-to-CIDR conversion and canonical formatting.
 */

export interface Ip {
  readonly v6: boolean;
  readonly n: bigint;
}

/** An inclusive address range of one family; every prefix is one. */
export interface IpRange {
  readonly v6: boolean;
  readonly lo: bigint;
  readonly hi: bigint;
}

export interface Prefix extends IpRange {
  readonly bits: number;
  /** The prefix as written in the policy (validated: no host bits). */
  readonly text: string;
}

export function parseIp(s: string): Ip | undefined {
  if (s.includes(':')) {
    const n = parseV6(s);
    return n === undefined ? undefined : { v6: true, n };
  }
  const n = parseV4(s);
  return n === undefined ? undefined : { v6: false, n };
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    n = (n << 8n) | BigInt(p);
  }
  return n;
}

function parseV6(s: string): bigint | undefined {
  if (s.includes('%')) return undefined; // zones have no place in a policy
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): bigint[] | undefined => {
    if (h === '') return [];
    const out: bigint[] = [];
    const parts = h.split(':');
    for (const [i, p] of parts.entries()) {
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseV4(p);
        if (v4 === undefined) return undefined;
        out.push(v4 >> 16n, v4 & 0xffffn);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) out.push(BigInt(parseInt(p, 16)));
      else return undefined;
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...Array<bigint>(missing).fill(0n), ...tail];
  return all.reduce((acc, g) => (acc << 16n) | g, 0n);
}

export type PrefixResult = { prefix: Prefix } | { error: string };

/** Parses "a.b.c.d", "a.b.c.d/n", "v6" or "v6/n"; a bare address is a single-address prefix. */
export function parsePrefix(s: string): PrefixResult | undefined {
  const slash = s.indexOf('/');
  const addr = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (!addr) return undefined;
  const width = addr.v6 ? 128 : 32;
  const bitsText = slash < 0 ? String(width) : s.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(bitsText) || Number(bitsText) > width) return { error: `invalid prefix length in ${JSON.stringify(s)}` };
  const bits = Number(bitsText);
  const hostMask = (1n << BigInt(width - bits)) - 1n;
  if ((addr.n & hostMask) !== 0n) return { error: `prefix ${JSON.stringify(s)} has host bits set (clients reject it)` };
  return { prefix: { v6: addr.v6, lo: addr.n, hi: addr.n | hostMask, bits, text: s } };
}

export function containsIp(r: IpRange, ip: Ip): boolean {
  return r.v6 === ip.v6 && r.lo <= ip.n && ip.n <= r.hi;
}

export function overlaps(a: IpRange, b: IpRange): boolean {
  return a.v6 === b.v6 && a.lo <= b.hi && b.lo <= a.hi;
}

export function isExitRoute(r: IpRange): boolean {
  return r.lo === 0n && r.hi === (r.v6 ? (1n << 128n) - 1n : (1n << 32n) - 1n);
}

/** Subtracts the given ranges (same family) from r, returning what is left in address order. */
export function subtract(r: IpRange, holes: readonly IpRange[]): IpRange[] {
  let left: IpRange[] = [r];
  for (const h of holes) {
    left = left.flatMap((x) => {
      if (!overlaps(x, h)) return [x];
      const out: IpRange[] = [];
      if (x.lo < h.lo) out.push({ v6: x.v6, lo: x.lo, hi: h.lo - 1n });
      if (h.hi < x.hi) out.push({ v6: x.v6, lo: h.hi + 1n, hi: x.hi });
      return out;
    });
  }
  return left;
}

/** The smallest list of CIDRs covering exactly r (IPv4 formatting only; IPv6 callers use literal prefixes). */
export function rangeToCidrs(r: IpRange): string[] {
  const width = r.v6 ? 128 : 32;
  const out: string[] = [];
  let lo = r.lo;
  while (lo <= r.hi) {
    let size = 0;
    while (size < width && (lo & ((1n << BigInt(size + 1)) - 1n)) === 0n && lo + (1n << BigInt(size + 1)) - 1n <= r.hi) size++;
    out.push(`${formatIp({ v6: r.v6, n: lo })}/${width - size}`);
    lo += 1n << BigInt(size);
  }
  return out;
}

/** Canonical text (RFC 5952 for IPv6: lower case, the longest zero run compressed). */
export function formatIp(ip: Ip): string {
  if (!ip.v6) return [24n, 16n, 8n, 0n].map((s) => String((ip.n >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ((ip.n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  let best = { start: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len) best = { start: i, len: j - i };
    i = Math.max(j, i + 1);
  }
  if (best.start < 0) return groups.join(':');
  return `${groups.slice(0, best.start).join(':')}::${groups.slice(best.start + best.len).join(':')}`;
}

/**
 * Parses a CIDR leniently — host bits are cleared, not refused — for advertised routes and config values;
 * returns undefined for anything that is not `address/bits`.
 */
export function parseCidr(s: string): Prefix | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const addr = parseIp(s.slice(0, slash));
  const bitsText = s.slice(slash + 1);
  const width = addr?.v6 ? 128 : 32;
  if (!addr || !/^[0-9]{1,3}$/.test(bitsText) || Number(bitsText) > width) return undefined;
  const bits = Number(bitsText);
  const hostMask = (1n << BigInt(width - bits)) - 1n;
  const lo = addr.n & ~hostMask;
  return { v6: addr.v6, lo, hi: lo | hostMask, bits, text: `${formatIp({ v6: addr.v6, n: lo })}/${bits}` };
}

export const isValidCidr = (s: string): boolean => parseCidr(s) !== undefined;

/** True when CIDR `inner` lies inside CIDR `outer`. */
export function cidrContains(outer: string, inner: string): boolean {
  const o = parseCidr(outer);
  const i = parseCidr(inner);
  return !!o && !!i && o.v6 === i.v6 && o.lo <= i.lo && i.hi <= o.hi;
}
