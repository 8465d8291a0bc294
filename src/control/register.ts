/**
 * POST /machine/register: pre-auth keys, interactive login with a follow-up long-poll, re-registration,
 * node-key rotation, logout and expiry — always bound to the Noise peer's machine key (trap T39).
 */
import type { Node, PreAuthKey } from '../domain/types.ts';
import { invalid, StateError } from '../state/errors.ts';
import type { Registrations } from '../state/registrations.ts';
import type { Tailnet } from '../state/tailnet.ts';
import { createRateCounter } from '../guard/limits.ts';
import { isKeyText, isPresentKey } from './noise/keys.ts';
import { isExpired, loginName, taggedDevices } from './netmap.ts';
import type { ControlObserver } from './observer.ts';
import type { NoisePeer } from './upgrade.ts';
import type { Hostinfo, RegisterRequest, RegisterResponse } from './wire.ts';

export interface RegisterDeps {
  readonly tailnet: Tailnet;
  readonly registrations: Registrations;
  readonly serverUrl: string;
  /** Interactive logins one source address may start per minute. */
  readonly pendingLoginsPerSourcePerMinute: number;
}

/** A request the server refuses at the HTTP level (malformed, or for another machine). */
export class ProtocolError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const zeroTime = '0001-01-01T00:00:00Z';

function success(t: Tailnet, node: Node): RegisterResponse {
  const user = node.userId !== null ? t.users.get(node.userId) : null;
  const id = user?.id ?? taggedDevices.ID;
  const name = user ? user.displayName || user.name : taggedDevices.DisplayName;
  const login = user ? loginName(user) : taggedDevices.LoginName;
  return {
    User: { ID: id, DisplayName: name, Created: user?.createdAt },
    Login: { ID: id, Provider: 'tailplane', LoginName: login, DisplayName: name },
    MachineAuthorized: true,
    NodeKeyExpired: false,
    AuthURL: '',
  };
}

export function parseRegisterRequest(body: unknown): RegisterRequest {
  const r = body as RegisterRequest;
  if (typeof r !== 'object' || r === null) throw new ProtocolError(400, 'register request must be a JSON object');
  if (!isPresentKey('nodekey:', r.NodeKey)) throw new ProtocolError(400, 'register request needs a NodeKey (nodekey: and 64 lowercase hex)');
  if (r.OldNodeKey !== undefined && !isKeyText('nodekey:', r.OldNodeKey)) throw new ProtocolError(400, 'malformed OldNodeKey');
  if (r.Followup !== undefined && typeof r.Followup !== 'string') throw new ProtocolError(400, 'Followup must be a string');
  return r;
}

/** What a pending login keeps of the client's Hostinfo: the node sends the whole of it again with its first map request. */
const pendingHostinfoFields = ['Hostname', 'OS', 'OSVersion', 'IPNVersion', 'GoArch', 'GoVersion', 'DeviceModel', 'Distro', 'DistroVersion', 'RequestTags', 'RoutableIPs'];
const maxFieldLength = 256;
const maxListLength = 64;

/** The identifying fields of a Hostinfo, strings and short lists of short strings only. */
function pendingHostinfo(hostinfo: Hostinfo | null | undefined): Hostinfo {
  const out: Record<string, unknown> = {};
  const h = (hostinfo ?? {}) as Record<string, unknown>;
  for (const field of pendingHostinfoFields) {
    const v = h[field];
    if (typeof v === 'string') out[field] = v.slice(0, maxFieldLength);
    else if (Array.isArray(v)) out[field] = v.filter((x) => typeof x === 'string').slice(0, maxListLength).map((x: string) => x.slice(0, maxFieldLength));
  }
  return out as Hostinfo;
}

/** The auth id at the end of a Followup URL; a Followup that is not a URL is the client's error. */
function followupId(followup: string, serverUrl: string): string {
  try {
    return new URL(followup, serverUrl).pathname.split('/').pop() ?? '';
  } catch {
    throw new ProtocolError(400, 'Followup is not a URL');
  }
}

export function createRegisterHandler(deps: RegisterDeps, observer: ControlObserver) {
  const t = deps.tailnet;
  const own = (n: Node | undefined, peer: NoisePeer): Node | undefined => (n && n.machineKey === peer.machineKey ? n : undefined);

  const loginsBySource = createRateCounter(deps.pendingLoginsPerSourcePerMinute);

  /** Every unauthenticated login costs memory until it expires, so each source may start only so many. */
  const startInteractive = (req: RegisterRequest, peer: NoisePeer): RegisterResponse => {
    if (!loginsBySource.hit(peer.source)) {
      throw new ProtocolError(429, `too many interactive logins from ${peer.source}: try again in ${loginsBySource.retryAfter(peer.source)} s`);
    }
    const hostinfo = pendingHostinfo(req.Hostinfo);
    const login = deps.registrations.start({
      machineKey: peer.machineKey,
      nodeKey: req.NodeKey,
      hostname: typeof hostinfo.Hostname === 'string' ? hostinfo.Hostname : 'node',
      hostinfo,
      ephemeral: req.Ephemeral ?? false,
    });
    return { AuthURL: `${deps.serverUrl}/register/${login.authId}` };
  };

  /**
   * The tags a node registered with this key gets: a tagged key's own tags (the client's --advertise-tags are
   * ignored), else the requested tags, each of which the key's user must own per the policy's tagOwners.
   */
  const tagsFor = (key: PreAuthKey, requested: readonly string[] | undefined): string[] => {
    if (key.tags.length) return [...key.tags];
    const wanted = [...new Set(requested ?? [])].sort();
    if (wanted.length === 0 || key.userId === null) return [];
    const refused = t.tagOwners.refusal(wanted, t.users.get(key.userId).name);
    if (refused) throw invalid(`requested tags [${wanted.join(', ')}] are invalid or not permitted: ${refused}`);
    return wanted;
  };

  /** A burst of joins with keys (a fleet coming up) shares the store's flushes: each is answered once durable. */
  const withAuthKey = async (req: RegisterRequest, peer: NoisePeer, authKey: string): Promise<RegisterResponse> => {
    const hostinfo = (req.Hostinfo ?? {}) as Hostinfo;
    let tags: string[] = [];
    const key = t.preAuthKeys.consume(authKey, (k) => (tags = tagsFor(k, hostinfo.RequestTags)));
    const { durable } = t.nodes.registerGrouped({
      machineKey: peer.machineKey,
      nodeKey: req.NodeKey,
      hostname: hostinfo.Hostname ?? 'node',
      hostinfo,
      userId: tags.length ? null : key.userId,
      tags,
      ephemeral: key.ephemeral || (req.Ephemeral ?? false),
      method: 'authkey',
    });
    const node = await durable;
    observer.registered('authkey');
    return success(t, node);
  };

  const followup = async (req: RegisterRequest, peer: NoisePeer, signal: AbortSignal): Promise<RegisterResponse> => {
    const authId = followupId(req.Followup!, deps.serverUrl);
    const outcome = await deps.registrations.wait(authId, signal);
    const node = own(t.nodes.byMachineKey(peer.machineKey), peer);
    if (outcome && node) {
      deps.registrations.finish(authId);
      observer.registered('interactive');
      return success(t, node);
    }
    return startInteractive(req, peer);
  };

  /** An ephemeral node is deleted (in the store's group commit, as a join is written), any other expires now. */
  const logout = async (req: RegisterRequest, peer: NoisePeer): Promise<RegisterResponse> => {
    const node = own(t.nodes.byNodeKey(req.NodeKey), peer);
    if (!node) return { NodeKeyExpired: true };
    if (node.ephemeral) await t.nodes.removeGrouped(node.id).durable;
    else t.nodes.setExpiry(node.id, new Date().toISOString());
    return { NodeKeyExpired: true };
  };

  /** Decides a register request (protocol.md §5.3); errors meant for the user come back as 200 + Error. */
  async function handle(req: RegisterRequest, peer: NoisePeer, signal: AbortSignal): Promise<RegisterResponse> {
    try {
      if (req.Expiry && req.Expiry !== zeroTime && Date.parse(req.Expiry) < Date.now()) return await logout(req, peer);
      if (req.Followup) return await followup(req, peer, signal);
      const authKey = req.Auth?.AuthKey;
      if (authKey) return await withAuthKey(req, peer, authKey);
      const known = own(t.nodes.byNodeKey(req.NodeKey), peer);
      if (known && !isExpired(known, Date.now())) return success(t, known);
      // Key rotation: the old key is ours and still valid, so the node keeps its id, IPs and owner.
      const previous = isPresentKey('nodekey:', req.OldNodeKey) ? own(t.nodes.byNodeKey(req.OldNodeKey), peer) : undefined;
      if (previous && !isExpired(previous, Date.now())) {
        const rotated = t.nodes.register({
          machineKey: peer.machineKey,
          nodeKey: req.NodeKey,
          hostname: previous.hostname,
          hostinfo: (req.Hostinfo ?? previous.hostinfo) as Hostinfo,
          userId: previous.userId,
          tags: [...previous.tags],
          ephemeral: previous.ephemeral,
          method: previous.registerMethod,
        });
        observer.registered('key_rotation');
        return success(t, rotated);
      }
      return startInteractive(req, peer);
    } catch (err) {
      if (!(err instanceof StateError)) throw err;
      observer.registrationFailed(err.kind);
      return { Error: err.message };
    }
  }

  return { handle };
}
