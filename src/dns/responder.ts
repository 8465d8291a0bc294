/**
 * The authoritative answers for the tailnet's base domain, as the zone a deployment delegates to tailplane:
 * TXT records of pending ACME DNS-01 challenges, SOA and NS at the apex, NXDOMAIN (with the SOA, for negative
 * caching) for any other name in the zone, and REFUSED outside it. Node addresses are never published here.
 */
import type { ChallengeStore } from './challenges.ts';
import { rcode, rrType, type Answer, type DnsRecord, type Query } from './message.ts';
import type { AnswerFn } from './server.ts';

/** Challenge records change within seconds: resolvers must not cache them, nor their absence, for long. */
const recordTtl = 10;

export interface ResponderOptions {
  /** The base domain (read on every query: an admin may change it). */
  readonly zone: () => string;
  readonly store: ChallengeStore;
  /** The name servers' host name for the SOA and NS records. */
  readonly nsName: string;
}

export function createAcmeResponder(opts: ResponderOptions): AnswerFn {
  return (q: Query): Answer | null => {
    if (q.opcode !== 0) return { rcode: rcode.notImp, authoritative: false };
    const zone = opts.zone().toLowerCase().replace(/\.$/, '');
    const inZone = q.name === zone || q.name.endsWith(`.${zone}`);
    if (!inZone || q.qclass !== 1) return { rcode: rcode.refused, authoritative: false };
    const soa: DnsRecord = {
      name: zone,
      type: 'SOA',
      ttl: recordTtl,
      mname: opts.nsName,
      rname: `hostmaster.${zone}`,
      serial: Math.floor(Date.now() / 1000),
      minimum: recordTtl,
    };
    const ok = (answers: DnsRecord[]): Answer =>
      answers.length ? { rcode: rcode.noError, authoritative: true, answers } : { rcode: rcode.noError, authoritative: true, authority: [soa] };
    if (q.name === zone) {
      if (q.type === rrType.SOA) return ok([soa]);
      if (q.type === rrType.NS) return ok([{ name: zone, type: 'NS', ttl: recordTtl, value: opts.nsName }]);
      return ok([]);
    }
    if (q.type === rrType.TXT) {
      const values = opts.store.serve(q.name);
      if (values.length) return ok(values.map((value) => ({ name: q.rawName, type: 'TXT', ttl: recordTtl, value })));
    }
    if (opts.store.has(q.name)) return ok([]);
    return { rcode: rcode.nxDomain, authoritative: true, authority: [soa] };
  };
}
