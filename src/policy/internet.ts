/** autogroup:internet as prefixes: public unicast space, i.e. everything but private, CGNAT, loopback, link-local and multicast. */
import { containsIp, parsePrefix, rangeToCidrs, subtract, type Ip, type IpRange } from '../net/ip.ts';

const V4_NOT_INTERNET = ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16', '224.0.0.0/3'];
/** Global unicast IPv6; the tailnet's ULA range fd7a:115c:a1e0::/48 lies outside it. */
const V6_INTERNET = '2000::/3';

const range = (s: string): IpRange => (parsePrefix(s) as { prefix: IpRange }).prefix;

const v4Ranges = subtract({ v6: false, lo: 0n, hi: (1n << 32n) - 1n }, V4_NOT_INTERNET.map(range));

/** The prefixes an exit node's packet filter admits for autogroup:internet. */
export const INTERNET_PREFIXES: readonly string[] = [...v4Ranges.flatMap(rangeToCidrs), V6_INTERNET];

export function isInternetIp(ip: Ip): boolean {
  return ip.v6 ? containsIp(range(V6_INTERNET), ip) : v4Ranges.some((r) => containsIp(r, ip));
}
