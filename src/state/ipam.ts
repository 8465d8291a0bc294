/**
 * Tailnet IP allocation: IPv4 from the configured slice of 100.64.0.0/10 and IPv6 from fd7a:115c:a1e0::/48,
 * sequential or random, never handing out an address in use or one Tailscale reserves.
 */
import { randomBytes } from 'node:crypto';
import { containsIp, formatIp, parseCidr, type Prefix } from '../net/ip.ts';

/** Addresses clients treat as special: MagicDNS (100.100.100.100) and ChromeOS's range (100.115.92.0/23). */
const reservedV4 = [cidr('100.100.100.100/32'), cidr('100.115.92.0/23')];

export interface IpAllocator {
  /**
   * Returns a free (ipv4, ipv6) pair; `inUse` says whether an address is taken. `random` picks at random
   * whatever the mode (a retry after another replica, which shares the sequential cursor's view, took the address).
   */
  next(inUse: (ip: string) => boolean, random?: boolean): { ipv4: string; ipv6: string };
}

export function createIpAllocator(v4: string, v6: string, mode: 'sequential' | 'random'): IpAllocator {
  const p4 = cidr(v4);
  const p6 = cidr(v6);
  const cursor = { 4: 0n, 6: 0n };
  const pick = (p: Prefix, inUse: (ip: string) => boolean, random: boolean): string => {
    const size = p.hi - p.lo + 1n;
    // Skip the network address (offset 0); for IPv4 also the broadcast address.
    const first = 1n;
    const usable = p.v6 ? size - 1n : size - 2n;
    if (usable <= 0n) throw new Error(`prefix ${p.text} has no usable addresses`);
    const family = p.v6 ? 6 : 4;
    const start = random ? randomOffset(usable) : cursor[family];
    // Probe forward from the start; bounded so a full prefix fails instead of spinning forever.
    const limit = usable < 1_000_000n ? usable : 1_000_000n;
    for (let i = 0n; i < limit; i++) {
      const offset = (start + i) % usable;
      const addr = { v6: p.v6, n: p.lo + first + offset };
      const ip = formatIp(addr);
      if (inUse(ip) || reservedV4.some((r) => containsIp(r, addr))) continue;
      if (!random) cursor[family] = offset + 1n;
      return ip;
    }
    throw new Error(`no free address left in ${p.text}`);
  };
  return {
    next: (inUse, random = mode === 'random') => ({ ipv4: pick(p4, inUse, random), ipv6: pick(p6, inUse, random) }),
  };
}

function cidr(text: string): Prefix {
  const p = parseCidr(text);
  if (!p) throw new Error(`invalid prefix ${text}`);
  return p;
}

function randomOffset(below: bigint): bigint {
  const n = BigInt('0x' + randomBytes(16).toString('hex'));
  return n % below;
}
