/**
 * tailplane_dns: the tailnet's DNS settings (a singleton). Arguments left out keep their live value; destroy
 * puts back the settings found at create.
 */
import type { CtyObject, CtyValue } from '../cty.ts';
import type { ManagedResource } from '../resource.ts';
import type { Block } from '../schema.ts';
import type { DnsSettings, TailnetApi } from '../tailnet-api.ts';
import { bool, list, str, strList } from '../values.ts';

const record = ['object', { name: 'string', type: 'string', value: 'string' }] as const;

const schema: Block = {
  description: 'DNS settings pushed to every client. Arguments left out keep the live value. Destroy restores the settings that were live at create.',
  attributes: {
    id: { type: 'string', computed: true, description: 'Always "dns".' },
    magic_dns: { type: 'bool', optional: true, computed: true, description: 'Whether MagicDNS names resolve.' },
    base_domain: { type: 'string', optional: true, computed: true, description: 'The MagicDNS base domain.' },
    nameservers: { type: ['list', 'string'], optional: true, computed: true, description: 'Global resolvers (IP addresses or DoH URLs).' },
    override_local_dns: { type: 'bool', optional: true, computed: true, description: 'Nameservers answer every name (true) or only back up the device\'s own DNS (false).' },
    search_domains: { type: ['list', 'string'], optional: true, computed: true, description: 'Search domains.' },
    split_dns: { type: ['map', ['list', 'string']], optional: true, computed: true, description: 'Resolvers per domain.' },
    extra_records: { type: ['list', record], optional: true, computed: true, description: 'Extra A/AAAA records: { name, type, value }.' },
  },
};

function toState(d: DnsSettings): CtyObject {
  return {
    id: 'dns',
    magic_dns: d.magicDns,
    base_domain: d.baseDomain,
    nameservers: list(d.nameservers),
    override_local_dns: d.overrideLocalDns,
    search_domains: list(d.searchDomains),
    split_dns: Object.fromEntries(Object.entries(d.splitDns).map(([k, v]) => [k, list(v)])),
    extra_records: d.extraRecords.map((r) => ({ name: r.name, type: r.type, value: r.value })),
  };
}

/** The live settings with every known planned argument laid over them. */
function overlay(live: DnsSettings, p: CtyObject): DnsSettings {
  const split = p.split_dns;
  const records = p.extra_records;
  return {
    magicDns: bool(p, 'magic_dns') ?? live.magicDns,
    baseDomain: str(p, 'base_domain') ?? live.baseDomain,
    nameservers: strList(p, 'nameservers') ?? live.nameservers,
    overrideLocalDns: bool(p, 'override_local_dns') ?? live.overrideLocalDns,
    searchDomains: strList(p, 'search_domains') ?? live.searchDomains,
    splitDns: isPlain(split) ? (split as Record<string, string[]>) : live.splitDns,
    extraRecords: Array.isArray(records) ? (records as { name: string; type: 'A' | 'AAAA'; value: string }[]) : live.extraRecords,
  };
}

const isPlain = (v: CtyValue) => v !== null && typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

async function converge(api: TailnetApi, planned: CtyObject) {
  const live = await api.getDns();
  return { live, result: await api.setDns(overlay(live, planned)) };
}

export function dnsResource(): ManagedResource {
  return {
    typeName: 'tailplane_dns',
    schemaVersion: 0,
    schema,
    async create(api, planned) {
      const { live, result } = await converge(api, planned);
      return { state: toState(result), private: { previous: live } };
    },
    async read(api) {
      return toState(await api.getDns());
    },
    async update(api, _prior, planned) {
      return toState((await converge(api, planned)).result);
    },
    async delete(api, _prior, priv) {
      if (priv?.previous) await api.setDns(priv.previous as DnsSettings);
    },
    async import(api) {
      return toState(await api.getDns());
    },
  };
}
