/**
 * POST /machine/set-dns (tailcfg.SetDNSRequest): a node publishes the TXT record of an ACME DNS-01 challenge
 * for its own name, so `tailscale cert` can get a certificate for `<node>.<base domain>`. Only the node whose
 * machine key is the Noise peer's may ask, only for `_acme-challenge.<its FQDN>`, only TXT, only a bounded value.
 */
import type { Tailnet } from '../state/tailnet.ts';
import { certDomain, isExpired } from './netmap.ts';
import { isKeyText } from './noise/keys.ts';
import { ProtocolError } from './register.ts';
import type { NoisePeer } from './upgrade.ts';

/** The ACME challenge label (RFC 8555 §8.4). */
const challengePrefix = '_acme-challenge.';
/** A DNS-01 value is 43 characters of base64url; one TXT character-string (255 bytes) is plenty of room. */
const maxValueLength = 255;

export interface SetDnsRequest {
  Version?: number;
  NodeKey: string;
  Name: string;
  Type: string;
  Value: string;
}

export interface SetDnsDeps {
  readonly tailnet: Tailnet;
  /** Publishes a TXT record (name in lower case without the final dot); undefined when certificates are off. */
  readonly publishTxt?: (name: string, value: string) => void;
  readonly log: { info(obj: object, msg?: string): void };
}

export function createSetDnsHandler(deps: SetDnsDeps) {
  const t = deps.tailnet;
  return (body: unknown, peer: NoisePeer): Record<string, never> => {
    const publish = deps.publishTxt;
    if (!publish) throw new ProtocolError(501, 'HTTPS certificates are not enabled on this server');
    const r = body as Partial<SetDnsRequest> | null;
    if (typeof r !== 'object' || r === null) throw new ProtocolError(400, 'set-dns request must be a JSON object');
    if (!isKeyText('nodekey:', r.NodeKey)) throw new ProtocolError(400, 'set-dns request needs a NodeKey');
    const node = t.nodes.byNodeKey(r.NodeKey);
    if (!node || node.machineKey !== peer.machineKey) throw new ProtocolError(404, 'node not found');
    if (isExpired(node, Date.now())) throw new ProtocolError(403, 'node key expired');
    if (r.Type !== 'TXT') throw new ProtocolError(400, `set-dns: record type "${String(r.Type)}" is not supported (only TXT)`);
    if (typeof r.Name !== 'string') throw new ProtocolError(400, 'set-dns request needs a Name');
    const name = r.Name.toLowerCase().replace(/\.$/, '');
    const own = challengePrefix + certDomain(t.dns(), node);
    if (name !== own) throw new ProtocolError(403, `set-dns: ${JSON.stringify(r.Name)} is not this node's challenge name ${own}`);
    if (typeof r.Value !== 'string' || r.Value.length === 0 || r.Value.length > maxValueLength || !/^[\x21-\x7e]+$/.test(r.Value)) {
      throw new ProtocolError(400, `set-dns: Value must be 1–${maxValueLength} printable ASCII characters`);
    }
    publish(name, r.Value);
    deps.log.info({ node: node.id, name }, 'published an ACME challenge record');
    return {};
  };
}
