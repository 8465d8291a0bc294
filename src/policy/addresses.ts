/**
 * The address sets Tailscale writes into packet filters: the tailnet's own space (what a `*` source means) and
 * the public internet (autogroup:internet), as the same inclusive ranges Tailscale's control plane sends.
 */
import { containsIp, formatIp, parsePrefix, subtract, type Ip, type IpRange } from '../net/ip.ts';

const range = (s: string): IpRange => (parsePrefix(s) as { prefix: IpRange }).prefix;

/** `lo-hi`, or the CIDR when the range is exactly one prefix (Tailscale writes fd7a:115c:a1e0::/48, not a range). */
export function formatRange(r: IpRange, asCidr = true): string {
  const size = r.hi - r.lo + 1n;
  const bits = size.toString(2).length - 1;
  const width = r.v6 ? 128 : 32;
  if (asCidr && size === 1n << BigInt(bits) && (r.lo & (size - 1n)) === 0n) return `${formatIp({ v6: r.v6, n: r.lo })}/${width - bits}`;
  return `${formatIp({ v6: r.v6, n: r.lo })}-${formatIp({ v6: r.v6, n: r.hi })}`;
}

/**
 * What a `*` source stands for: the CGNAT range minus the ChromeOS VM range, plus the tailnet ULA range
 * (tailscale/tailscale net/tsaddr/tsaddr.go: CGNATRange 100.64.0.0/10, ChromeOSVMRange 100.115.92.0/23,
 * TailscaleULARange fd7a:115c:a1e0::/48; headscale hscontrol/policy/v2/types.go asterixResolved builds the same
 * set). Captured Tailscale filters write it as "100.64.0.0-100.115.91.255", "100.115.94.0-100.127.255.255",
 * "fd7a:115c:a1e0::/48". Approved subnet routes are added per tailnet (see rules.ts).
 */
export const TAILNET_SOURCE_RANGES: readonly string[] = [
  ...subtract(range('100.64.0.0/10'), [range('100.115.92.0/23')]).map((r) => formatRange(r)),
  'fd7a:115c:a1e0::/48',
];

/**
 * autogroup:internet: all of IPv4 minus RFC 1918, the CGNAT range and link-local; IPv6 global unicast 2000::/3
 * (its holes fc00::/7, the ULA range and fe80::/10 lie outside it). Same set as headscale's util.TheInternet
 * (hscontrol/util/net.go); Tailscale sends it to exit nodes as ranges, IPv6 included ("2000::-3fff:...:ffff"),
 * per the capture in headscale hscontrol/policy/v2/testdata/issue_3212/routes-b17-*.hujson.
 */
const V4_INTERNET = subtract(range('0.0.0.0/0'), ['10.0.0.0/8', '100.64.0.0/10', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16'].map(range));
const V6_INTERNET = range('2000::/3');

export const INTERNET_RANGES: readonly string[] = [...V4_INTERNET, V6_INTERNET].map((r) => formatRange(r, false));

export function isInternetIp(ip: Ip): boolean {
  return ip.v6 ? containsIp(V6_INTERNET, ip) : V4_INTERNET.some((r) => containsIp(r, ip));
}

/** Whether a whole range is public address space (a literal destination an exit node forwards to). */
export function isInternetRange(p: IpRange): boolean {
  return [...V4_INTERNET, V6_INTERNET].some((r) => r.v6 === p.v6 && r.lo <= p.lo && p.hi <= r.hi);
}
