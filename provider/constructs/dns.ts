/** The tailnet's DNS settings (tailplane_dns): MagicDNS, resolvers, split DNS and extra records. */
import { Construct } from 'constructs';
import * as tf from '../bindings/index.ts';
import { tailnetOf } from './scope.ts';

export interface DnsProps {
  readonly magicDns?: boolean;
  /** The MagicDNS suffix, e.g. "clinic.tailnet.internal". */
  readonly baseDomain?: string;
  readonly nameservers?: string[];
  /** Nameservers answer every name (true) or only back up the device's own DNS (false). */
  readonly overrideLocalDns?: boolean;
  readonly searchDomains?: string[];
  /** Resolvers per domain, e.g. { 'clinic.lan': ['10.20.0.53'] }. */
  readonly splitDns?: Record<string, string[]>;
  readonly extraRecords?: tf.DnsRecord[];
}

/** One per Tailnet: the server has one set of DNS settings. Settings left out keep their live value. */
export class Dns extends Construct {
  readonly resource: tf.Dns;

  constructor(scope: Construct, id: string, props: DnsProps) {
    super(scope, id);
    const tailnet = tailnetOf(this);
    this.resource = new tf.Dns(this, 'resource', { ...props, provider: tailnet.provider });
    this.node.addValidation({
      validate: () => {
        const all = tailnet.node.findAll().filter((c) => c instanceof Dns);
        return all.length > 1 ? [`Tailnet ${tailnet.node.path} has ${all.length} Dns constructs (${all.map((c) => c.node.path).join(', ')}); it may have one`] : [];
      },
    });
  }
}
