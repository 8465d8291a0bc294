/**
 * Validation of the tailnet's DNS settings (MagicDNS, base domain, resolvers, split DNS, extra records).
 */
import { isIP } from 'node:net';
import type { DnsSettings } from '../domain/types.ts';

const dnsName = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?$/i;

/** A resolver is an IP address or a DoH URL (https://…). */
const isResolver = (r: string) => isIP(r) !== 0 || /^https:\/\/\S+$/.test(r);

/** Returns a message naming the first bad field, or null when the settings are valid. */
export function checkDns(d: DnsSettings): string | null {
  if (!dnsName.test(d.baseDomain)) return `dns.baseDomain "${d.baseDomain}" is not a DNS name`;
  const badNs = d.nameservers.find((n) => !isResolver(n));
  if (badNs !== undefined) return `dns.nameservers: "${badNs}" is not an IP address or https:// URL`;
  for (const [domain, resolvers] of Object.entries(d.splitDns)) {
    if (!dnsName.test(domain)) return `dns.splitDns: "${domain}" is not a DNS name`;
    const bad = resolvers.find((r) => !isResolver(r));
    if (bad !== undefined) return `dns.splitDns["${domain}"]: "${bad}" is not an IP address or https:// URL`;
  }
  const badSearch = d.searchDomains.find((s) => !dnsName.test(s));
  if (badSearch !== undefined) return `dns.searchDomains: "${badSearch}" is not a DNS name`;
  for (const r of d.extraRecords) {
    if (!dnsName.test(r.name)) return `dns.extraRecords: "${r.name}" is not a DNS name`;
    if (r.type !== 'A' && r.type !== 'AAAA') return `dns.extraRecords["${r.name}"]: type must be A or AAAA`;
    if (isIP(r.value) !== (r.type === 'A' ? 4 : 6)) {
      return `dns.extraRecords["${r.name}"]: "${r.value}" is not an IPv${r.type === 'A' ? 4 : 6} address`;
    }
  }
  return null;
}
