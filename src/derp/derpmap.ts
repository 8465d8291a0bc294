/** tailcfg.DERPMap JSON: the embedded relay's one-region map, loading an external map file, and merging them. */
import { readFile } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';

/** tailcfg.DERPNode (JSON field names as the client expects them). */
export interface DerpNode {
  Name: string;
  RegionID: number;
  HostName: string;
  CertName?: string;
  /** Forces the address to dial; "none" disables the family, "" means resolve HostName. */
  IPv4?: string;
  IPv6?: string;
  /** 0 means 3478; -1 disables STUN. */
  STUNPort?: number;
  STUNOnly?: boolean;
  /** 0 means 443 (TLS) or 3340 (plain HTTP), so the embedded map always sets it. */
  DERPPort?: number;
  InsecureForTests?: boolean;
  STUNTestIP?: string;
  CanPort80?: boolean;
}

export interface DerpRegion {
  RegionID: number;
  RegionCode: string;
  RegionName: string;
  Latitude?: number;
  Longitude?: number;
  Avoid?: boolean;
  NoMeasureNoHome?: boolean;
  Nodes: DerpNode[];
}

export interface DerpMap {
  /** Keyed by the decimal RegionID. Never holds a null region. */
  Regions: Record<string, DerpRegion>;
  omitDefaultRegions?: boolean;
}

export interface EmbeddedDerpMapOptions {
  /** The control server's public URL; DERP is served on the same host and port (http:// or https://). */
  serverUrl: string;
  regionId?: number;
  regionCode?: string;
  regionName?: string;
  /** UDP port of the STUN server; omit (or -1) when none runs. Never 0, which clients read as 3478. */
  stunPort?: number;
  /** Override the address clients dial / send STUN to; "none" disables a family. */
  ipv4?: string;
  ipv6?: string;
  /** Accept any TLS certificate (self-signed relay). Irrelevant for plain HTTP. */
  insecureForTests?: boolean;
  /** Send STUN to this IP instead of IPv4/HostName (tailscale's own tests use it on loopback). */
  stunTestIp?: string;
}

/** Where clients should dial, derived from the URL's host unless overridden. IP literals skip DNS. */
function addresses(host: string, opts: EmbeddedDerpMapOptions): { IPv4?: string; IPv6?: string } {
  let ipv4: string | undefined;
  let ipv6: string | undefined;
  if (isIPv4(host)) [ipv4, ipv6] = [host, 'none'];
  else if (isIPv6(host)) [ipv4, ipv6] = ['none', host];
  // The control server listens on 127.0.0.1 by default; "localhost" may resolve to ::1 first.
  else if (host === 'localhost') [ipv4, ipv6] = ['127.0.0.1', 'none'];
  ipv4 = opts.ipv4 ?? ipv4;
  ipv6 = opts.ipv6 ?? ipv6;
  return { ...(ipv4 ? { IPv4: ipv4 } : {}), ...(ipv6 ? { IPv6: ipv6 } : {}) };
}

/**
 * The map advertising the relay embedded in the control server: one region, one node on the server's host and
 * port. Plain-http URLs only work for clients whose tailscaled runs with TS_DEBUG_USE_DERP_HTTP=1; no map field
 * can ask for HTTP.
 */
export function embeddedDerpMap(opts: EmbeddedDerpMapOptions): DerpMap {
  const url = new URL(opts.serverUrl);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`serverUrl must be http(s): ${opts.serverUrl}`);
  const regionId = opts.regionId ?? 999;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const node: DerpNode = {
    Name: `${regionId}a`,
    RegionID: regionId,
    HostName: host,
    ...addresses(host, opts),
    DERPPort: Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
    STUNPort: opts.stunPort && opts.stunPort > 0 ? opts.stunPort : -1,
    ...(opts.insecureForTests ? { InsecureForTests: true } : {}),
    ...(opts.stunTestIp ? { STUNTestIP: opts.stunTestIp } : {}),
  };
  const region: DerpRegion = {
    RegionID: regionId,
    RegionCode: opts.regionCode ?? 'tailplane',
    RegionName: opts.regionName ?? 'Tailplane embedded DERP',
    Nodes: [node],
  };
  return validateDerpMap({ Regions: { [regionId]: region }, omitDefaultRegions: true });
}

/** Reads a DERP map JSON file (tailcfg.DERPMap shape, as headscale and tailscale use) and validates it. */
export async function loadDerpMap(file: string): Promise<DerpMap> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`DERP map ${file}: ${(err as Error).message}`);
  }
  return validateDerpMap(parsed, file);
}

/** Combines maps; a later map's region replaces an earlier one with the same id. */
export function mergeDerpMaps(...maps: DerpMap[]): DerpMap {
  const merged: DerpMap = { Regions: {} };
  for (const m of maps) Object.assign(merged.Regions, m.Regions);
  if (maps.some((m) => m.omitDefaultRegions)) merged.omitDefaultRegions = true;
  return merged;
}

/** Checks the rules a client enforces or trips over (trap T30), naming the offending region and field. */
export function validateDerpMap(value: unknown, source = 'DERP map'): DerpMap {
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObj(value) || !isObj(value.Regions)) return fail('expected an object with "Regions"');
  for (const [id, region] of Object.entries(value.Regions)) {
    if (!isObj(region)) return fail(`region ${id} is ${region === null ? 'null' : 'not an object'}`);
    const rid = region.RegionID;
    if (!Number.isSafeInteger(rid) || (rid as number) <= 0) fail(`region ${id}: RegionID must be a positive integer`);
    if (String(rid) !== id) fail(`region ${id}: key does not match RegionID ${String(rid)}`);
    if (!Array.isArray(region.Nodes) || region.Nodes.length === 0) fail(`region ${id}: Nodes must be a non-empty list`);
    (region.Nodes as unknown[]).forEach((n, i) => {
      if (!isObj(n)) return fail(`region ${id} node ${i}: not an object`);
      if (typeof n.Name !== 'string' || n.Name === '') fail(`region ${id} node ${i}: Name is required`);
      if (n.RegionID !== rid) fail(`region ${id} node ${i}: RegionID must be ${String(rid)}`);
      if (typeof n.HostName !== 'string' || n.HostName === '') fail(`region ${id} node ${i}: HostName is required`);
      for (const port of ['DERPPort', 'STUNPort'] as const) {
        const p = n[port];
        if (p !== undefined && (!Number.isInteger(p) || (p as number) < -1 || (p as number) > 65535)) {
          fail(`region ${id} node ${i}: ${port} must be an integer -1..65535`);
        }
      }
    });
  }
  return value as unknown as DerpMap;
}
