/**
 * Tailnet IP allocation: IPv4 from the configured slice of 100.64.0.0/10 and IPv6 from fd7a:115c:a1e0::/48,
 * sequential or random, never handing out an address in use or one Tailscale reserves.
 */
import { randomBytes } from 'node:crypto';
import { bigIntToIp, parsePrefix, prefixHas, prefixSize, type Prefix } from '../net/ip.ts';

/** Addresses clients treat as special: MagicDNS (100.100.100.100) and ChromeOS's range (100.115.92.0/23). */
const reservedV4 = [parsePrefix('100.100.100.100/32'), parsePrefix('100.115.92.0/23')];

export interface IpAllocator {
  /** Returns a free (ipv4, ipv6) pair; `inUse` says whether an address is taken. */
  next(inUse: (ip: string) => boolean): { ipv4: string; ipv6: string };
}

export function createIpAllocator(v4: string, v6: string, mode: 'sequential' | 'random'): IpAllocator {
  const p4 = parsePrefix(v4);
  const p6 = parsePrefix(v6);
  const cursor = { 4: 0n, 6: 0n };
  const pick = (p: Prefix, inUse: (ip: string) => boolean): string => {
    const size = prefixSize(p);
    // Skip the network address (offset 0); for IPv4 also the broadcast address.
    const first = 1n;
    const usable = p.family === 4 ? size - 2n : size - 1n;
    if (usable <= 0n) throw new Error(`prefix ${bigIntToIp(p.base, p.family)}/${p.bits} has no usable addresses`);
    const start = mode === 'random' ? randomOffset(usable) : cursor[p.family];
    // Probe forward from the start; bounded so a full prefix fails instead of spinning forever.
    const limit = usable < 1_000_000n ? usable : 1_000_000n;
    for (let i = 0n; i < limit; i++) {
      const offset = (start + i) % usable;
      const ip = bigIntToIp(p.base + first + offset, p.family);
      if (inUse(ip) || (p.family === 4 && reservedV4.some((r) => prefixHas(r, ip)))) continue;
      if (mode === 'sequential') cursor[p.family] = offset + 1n;
      return ip;
    }
    throw new Error(`no free address left in ${bigIntToIp(p.base, p.family)}/${p.bits}`);
  };
  return { next: (inUse) => ({ ipv4: pick(p4, inUse), ipv6: pick(p6, inUse) }) };
}

function randomOffset(below: bigint): bigint {
  const n = BigInt('0x' + randomBytes(16).toString('hex'));
  return n % below;
}
