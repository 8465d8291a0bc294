/**
 * Validation of the tailnet's DNS settings (MagicDNS, base domain, resolvers, split DNS, extra records): every
 * message names the field and the value, so a refused change says what to fix.
 */
import { isIP } from 'node:net';
import type { DnsSettings } from '../domain/types.ts';

/** A letter-digit-hyphen label of 1–63 characters that neither starts nor ends with '-'. */
const ldhLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/**
 * A host name as DNS and clients accept it: LDH labels, at most 253 characters without the optional final dot,
 * and a last label that is not all digits (so "corp.example.123" or "10.0.0.1" is not taken for a name).
 */
export function isDnsName(name: string): boolean {
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare.length === 0 || bare.length > 253) return false;
  const labels = bare.split('.');
  return labels.every((l) => ldhLabel.test(l)) && !/^\d+$/.test(labels.at(-1)!);
}

/** "ip" or "ip:port" / "[ipv6]:port" (clients accept a port, which lets a resolver run on another port). */
function isResolverAddr(r: string): boolean {
  if (isIP(r) !== 0) return true;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(r);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) return false;
  return m[1] !== undefined ? isIP(m[1]) === 6 : isIP(m[2]!) === 4;
}

/** A resolver is an IP address (optionally with a port) or a DoH URL (https://…). */
const isResolver = (r: string) => isResolverAddr(r) || /^https:\/\/[^\s/]+\S*$/.test(r);
const resolverHint = 'is not an IP address, IP:port or https:// URL';

/** Returns a message naming the first bad field, or null when the settings are valid. */
export function checkDns(d: DnsSettings): string | null {
  if (!isDnsName(d.baseDomain)) return `dns.baseDomain: "${d.baseDomain}" is not a DNS name`;
  const badNs = d.nameservers.find((n) => !isResolver(n));
  if (badNs !== undefined) return `dns.nameservers: "${badNs}" ${resolverHint}`;
  for (const [domain, resolvers] of Object.entries(d.splitDns)) {
    if (!isDnsName(domain)) return `dns.splitDns: "${domain}" is not a DNS name`;
    const bad = resolvers.find((r) => !isResolver(r));
    if (bad !== undefined) return `dns.splitDns["${domain}"]: "${bad}" ${resolverHint}`;
  }
  const badSearch = d.searchDomains.find((s) => !isDnsName(s));
  if (badSearch !== undefined) return `dns.searchDomains: "${badSearch}" is not a DNS name`;
  for (const r of d.extraRecords) {
    if (!isDnsName(r.name)) return `dns.extraRecords: "${r.name}" is not a DNS name`;
    if (r.type !== 'A' && r.type !== 'AAAA') return `dns.extraRecords["${r.name}"]: type must be A or AAAA`;
    if (isIP(r.value) !== (r.type === 'A' ? 4 : 6)) {
      return `dns.extraRecords["${r.name}"]: "${r.value}" is not an IPv${r.type === 'A' ? 4 : 6} address`;
    }
  }
  return null;
}
