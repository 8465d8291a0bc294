/**
 * Tailscale SSH check mode over Noise. A "check" rule gives the destination node a hold-and-delegate URL
 * (`/machine/ssh/action/from/$SRC_NODE_ID/to/$DST_NODE_ID?ssh_user=…&local_user=…`); while the ssh session
 * waits, the node GETs it and gets back an SSHAction: accept at once when an approval of that user for that
 * node is still within its check period, else a message naming the check id plus a second URL
 * (`/machine/ssh/action/wait/<id>`) that long-polls until a person approves or denies it, or it times out.
 * Only the destination node itself may fetch either (its Noise machine key must be the node's).
 */
import type { Node, SshCheck } from '../domain/types.ts';
import { heldBy, noiseUrlBase, type SshAction } from '../policy/index.ts';
import type { PolicyView } from '../state/policy-view.ts';
import type { Tailnet } from '../state/tailnet.ts';
import type { Http2Request } from './http2/stream.ts';
import { loginName } from './netmap.ts';
import { ProtocolError } from './register.ts';
import type { NoisePeer } from './upgrade.ts';

export interface SshActionDeps {
  readonly tailnet: Tailnet;
  readonly policy: PolicyView;
  readonly serverUrl: string;
  readonly sshCheckLoginUrl?: (checkId: string) => string;
}

export const sshActionPrefix = '/machine/ssh/action/';
/** One round of the long poll; the node's own limit is 30 minutes, but a shorter round survives idle proxies. */
const longPollMs = 50_000;
/** ssh user names are short; anything longer is not a real request. */
const maxUserLength = 256;

const reject = (message: string): SshAction => ({ reject: true, message: `tailplane: ${message}\n` });

const duration = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`);

export function createSshActions(deps: SshActionDeps) {
  const t = deps.tailnet;
  const checks = t.sshChecks;

  /** The destination node, proven by the Noise handshake; anyone else gets the same 403, known node or not. */
  const destination = (nodeId: number, peer: NoisePeer): Node => {
    const node = t.nodes.find(nodeId);
    if (!node || node.machineKey !== peer.machineKey) throw new ProtocolError(403, 'only the destination node may fetch its SSH action');
    return node;
  };

  const waitUrl = (id: string) => `${noiseUrlBase(deps.serverUrl)}${sshActionPrefix}wait/${id}`;

  /** The first fetch: accept within an approval's period, or open a check and hand over its wait URL. */
  async function first(srcId: number, dst: Node, sshUser: string, localUser: string): Promise<SshAction> {
    const src = t.nodes.find(srcId);
    if (!src) return reject('the source device of this session is not in the tailnet.');
    if (src.userId === null) {
      return reject(`check mode needs a person behind the source device; tagged devices (${src.tags.join(', ')}) cannot use it.`);
    }
    await deps.policy.settle();
    const held = heldBy(deps.policy.current(), src.id, dst.id, sshUser);
    if (!held) return reject('the tailnet policy does not hold this session for a check (it may just have changed); connect again.');
    // checkPeriod "always" (0) holds every session, whatever other rules' approvals admit.
    if (held.periodMs > 0 && checks.approvalFor(src.userId, dst.id)) return held.accept;
    const c = checks.start({
      srcNodeId: src.id,
      srcNode: src.givenName,
      srcUserId: src.userId,
      srcUser: loginName(t.users.get(src.userId)),
      dstNodeId: dst.id,
      dstNode: dst.givenName,
      sshUser,
      localUser,
      periodMs: held.periodMs,
    });
    const timeout = Date.parse(c.deadline) - Date.parse(c.createdAt);
    return {
      message:
        `# tailplane: this SSH session needs approval (check ${c.id}).\n` +
        `# An admin approves it with:  tailplane ssh approve ${c.id}\n` +
        (deps.sshCheckLoginUrl ? `# Or ${c.srcUser} approves it by logging in at:  ${deps.sshCheckLoginUrl(c.id)}\n` : '') +
        `# Waiting up to ${duration(timeout)}...\n`,
      holdAndDelegate: waitUrl(c.id),
    };
  }

  /** One round of the long poll on a check: its outcome, or the same URL again while it is still pending. */
  async function poll(c: SshCheck, signal: AbortSignal): Promise<SshAction> {
    const now = await checks.wait(c.id, longPollMs, signal);
    switch (now.state) {
      case 'pending':
        return { holdAndDelegate: waitUrl(c.id) };
      case 'denied':
        return reject(`access denied: an admin (${now.decidedBy}) denied SSH check ${c.id}.`);
      case 'timeout':
        return reject(`access denied: nobody approved SSH check ${c.id} in time; connect again to start a new check.`);
      case 'approved': {
        // The rule may have gone while the session waited; an approval does not outlive the policy.
        await deps.policy.settle();
        const held = heldBy(deps.policy.current(), c.srcNodeId, c.dstNodeId, c.sshUser);
        return held ? held.accept : reject('the tailnet policy no longer allows this session.');
      }
    }
  }

  /** Serves GET /machine/ssh/action/…; malformed, foreign or unknown requests get a 4xx and change nothing. */
  async function handle(req: Http2Request, peer: NoisePeer, signal: AbortSignal): Promise<SshAction> {
    if (req.method !== 'GET') throw new ProtocolError(405, 'SSH actions are fetched with GET');
    const url = new URL(req.url, 'https://control');
    const rest = url.pathname.slice(sshActionPrefix.length);
    const from = /^from\/(\d{1,15})\/to\/(\d{1,15})$/.exec(rest);
    if (from) {
      const dst = destination(Number(from[2]), peer);
      const sshUser = url.searchParams.get('ssh_user') ?? '';
      const localUser = url.searchParams.get('local_user') ?? '';
      if (!sshUser || !localUser || sshUser.length > maxUserLength || localUser.length > maxUserLength) {
        throw new ProtocolError(400, 'SSH action URL needs ssh_user and local_user');
      }
      return first(Number(from[1]), dst, sshUser, localUser);
    }
    const wait = /^wait\/([A-Za-z0-9_-]{1,64})$/.exec(rest);
    if (!wait) throw new ProtocolError(400, 'malformed SSH action URL');
    const c = checks.get(wait[1]!);
    if (!c) throw new ProtocolError(404, 'no such SSH check');
    destination(c.dstNodeId, peer);
    return poll(c, signal);
  }

  return { handle };
}
