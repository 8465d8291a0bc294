/** Parsers for the policy's small string grammars: aliases, `alias:ports` destinations, port lists and protocols. */
import type { Pos } from './errors.ts';
import { parsePrefix } from '../net/ip.ts';
import { AUTOGROUPS, type Alias, type AutogroupName, type PortRange } from './types.ts';

export type Parsed<T> = { ok: T } | { error: string };

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Whether `name` can follow "group:", "tag:" or "ipset:" in a policy (so an IdP group named so can be used there). */
export const isPolicyName = (name: string): boolean => NAME.test(name);

/** Parses one alias. Bare words are host names; whether they exist is checked later. */
export function parseAlias(text: string, pos: Pos): Parsed<Alias> {
  const base = { text, pos };
  if (text === '*') return { ok: { ...base, kind: 'wildcard' } };
  const prefixed = (p: string) => (text.startsWith(p) ? text.slice(p.length) : undefined);
  const named = (kind: 'group' | 'tag' | 'ipset', p: string): Parsed<Alias> | undefined => {
    const rest = prefixed(p);
    if (rest === undefined) return undefined;
    return NAME.test(rest) ? { ok: { ...base, kind, name: text } } : { error: `invalid ${kind} name ${JSON.stringify(text)}` };
  };
  const byPrefix = named('group', 'group:') ?? named('tag', 'tag:') ?? named('ipset', 'ipset:');
  if (byPrefix) return byPrefix;
  const ag = prefixed('autogroup:');
  if (ag !== undefined) {
    if (!(AUTOGROUPS as readonly string[]).includes(ag)) return { error: `unknown autogroup ${JSON.stringify(text)}` };
    return { ok: { ...base, kind: 'autogroup', name: ag as AutogroupName } };
  }
  const domain = prefixed('user:*@');
  if (domain !== undefined) {
    return /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(domain)
      ? { ok: { ...base, kind: 'domain', name: domain.toLowerCase() } }
      : { error: `invalid ${JSON.stringify(text)} (expected "user:*@example.com")` };
  }
  if (text.includes('@')) {
    return /^[^@\s:]+@[^@\s:]*$/.test(text)
      ? { ok: { ...base, kind: 'user', name: text } }
      : { error: `invalid user ${JSON.stringify(text)} (expected "name@" or an e-mail address)` };
  }
  const pr = parsePrefix(text);
  if (pr) return 'error' in pr ? pr : { ok: { ...base, kind: 'prefix', prefix: pr.prefix } };
  if (/^[0-9.]+(\/[0-9]+)?$/.test(text) || text.includes(':')) return { error: `invalid IP address or prefix ${JSON.stringify(text)}` };
  if (NAME.test(text)) return { ok: { ...base, kind: 'host', name: text } };
  return { error: `invalid alias ${JSON.stringify(text)}` };
}

/** Splits `alias:ports`; IPv6 may be bracketed (`[fd7a::1]:22`) or given as a prefix (`fd7a::1/128:22`). */
export function splitHostPort(text: string): Parsed<{ alias: string; ports: string }> {
  if (text.startsWith('[')) {
    const m = /^\[([^\]]+)\]:(.+)$/.exec(text);
    return m ? { ok: { alias: m[1]!, ports: m[2]! } } : { error: `invalid destination ${JSON.stringify(text)} (expected "[ipv6]:ports")` };
  }
  const i = text.lastIndexOf(':');
  if (i <= 0 || i === text.length - 1) return { error: `destination ${JSON.stringify(text)} needs ports, as "alias:ports" (ports may be "*")` };
  return { ok: { alias: text.slice(0, i), ports: text.slice(i + 1) } };
}

export const ALL_PORTS: PortRange = { first: 0, last: 65535 };

/** Parses `*`, `22`, `22,80` or `1000-2000` (and combinations of the last three). */
export function parsePorts(text: string): Parsed<PortRange[]> {
  if (text === '*') return { ok: [ALL_PORTS] };
  const out: PortRange[] = [];
  for (const part of text.split(',')) {
    const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(part);
    if (!m) return { error: `invalid port ${JSON.stringify(part)} in ${JSON.stringify(text)}` };
    const first = Number(m[1]);
    const last = m[2] === undefined ? first : Number(m[2]);
    if (last > 65535) return { error: `port ${last} out of range (1-65535)` };
    // Tailscale: `port range "0": first port must be >0, or use '*' for wildcard`.
    if (first === 0) return { error: `port range ${JSON.stringify(part)}: the first port must be above 0 (use "*" for every port)` };
    if (first > last) return { error: `port range ${JSON.stringify(part)} is reversed` };
    out.push({ first, last });
  }
  return { ok: out };
}

/** IANA numbers for the protocol names Tailscale accepts. */
const PROTOCOLS: Readonly<Record<string, number>> = {
  icmp: 1, igmp: 2, ipv4: 4, 'ip-in-ip': 4, tcp: 6, egp: 8, igp: 9, udp: 17, gre: 47, esp: 50, ah: 51,
  'ipv6-icmp': 58, icmpv6: 58, sctp: 132,
};
const PORTED = new Set([6, 17, 132]);

export function protoName(n: number): string {
  return Object.entries(PROTOCOLS).find(([, v]) => v === n)?.[0] ?? String(n);
}

/** Parses a protocol name or number; `*` or "" means the client default (undefined). */
export function parseProto(text: string): Parsed<number[] | undefined> {
  if (text === '' || text === '*') return { ok: undefined };
  const named = PROTOCOLS[text.toLowerCase()];
  if (named !== undefined) return { ok: [named] };
  if (/^[0-9]{1,3}$/.test(text) && Number(text) <= 255) return { ok: [Number(text)] };
  return { error: `unknown protocol ${JSON.stringify(text)}` };
}

/** Protocols without ports (ICMP, GRE, ...) only make sense with port `*`. */
export function portsFitProto(protos: readonly number[] | undefined, ports: readonly PortRange[]): boolean {
  if (!protos || protos.every((p) => PORTED.has(p))) return true;
  return ports.length === 1 && ports[0]!.first === 0 && ports[0]!.last === 65535;
}

/**
 * Parses a grant `ip` entry: `*`, `443`, `tcp:443`, `tcp:80-90,443` or `icmp:*`. A bare protocol (`icmp`) is a
 * port list to Tailscale, which refuses it (`port range "icmp": invalid first integer`); so does this.
 */
export function parseIpEntry(text: string): Parsed<{ protos: number[] | undefined; ports: PortRange[] }> {
  if (text === '*') return { ok: { protos: undefined, ports: [ALL_PORTS] } };
  const i = text.indexOf(':');
  if (i < 0 && !/^[0-9,*-]+$/.test(text)) {
    const hint = 'ok' in parseProto(text) ? `; for every ${text} packet write "${text}:*"` : '';
    return { error: `port range ${JSON.stringify(text)} is not a number${hint}` };
  }
  const protoText = i < 0 ? '' : text.slice(0, i);
  const portText = i < 0 ? text : text.slice(i + 1);
  const proto = parseProto(protoText);
  if ('error' in proto) return proto;
  const ports = parsePorts(portText);
  if ('error' in ports) return ports;
  if (!portsFitProto(proto.ok, ports.ok)) return { error: `protocol ${JSON.stringify(protoText)} has no ports; use "${protoText}:*"` };
  return { ok: { protos: proto.ok, ports: ports.ok } };
}
