/**
 * The control plane's request router over Noise: reads and size-limits JSON bodies, dispatches
 * /machine/register, /machine/map, /machine/set-dns and the SSH check actions, and answers the other optional
 * endpoints with 501 like Headscale.
 */
import { runAs } from '../audit/context.ts';
import type { DerpMap } from '../derp/index.ts';
import { pathOf } from '../guard/http.ts';
import { defaultLimits } from '../guard/limits.ts';
import { jsonProblem } from '../guard/json.ts';
import type { PolicyView } from '../state/policy-view.ts';
import type { Registrations } from '../state/registrations.ts';
import { createPrimaryRoutes } from '../state/routes.ts';
import { StoreUnavailableError } from '../store/errors.ts';
import type { Tailnet } from '../state/tailnet.ts';
import { createFrameEncoder } from './frames.ts';
import { BodyError, type Http2Request, type Http2Response } from './http2/stream.ts';
import { createMapHandler } from './map.ts';
import { createMapper } from './mapper.ts';
import { createRegisterHandler, parseRegisterRequest, ProtocolError } from './register.ts';
import { createSshActions, sshActionPrefix } from './ssh.ts';
import { createSetDnsHandler } from './set-dns.ts';
import { silentObserver, type ControlObserver } from './observer.ts';
import type { NoisePeer } from './upgrade.ts';
import type { MapRequest } from './wire.ts';

export interface ControlDeps {
  readonly tailnet: Tailnet;
  readonly registrations: Registrations;
  readonly policy: PolicyView;
  readonly derpMap: () => DerpMap;
  readonly serverUrl: string;
  /** Publishes an ACME challenge TXT record; set when HTTPS certificates are enabled. */
  readonly publishTxt?: (name: string, value: string) => void;
  /** With OIDC: the page where a check's source user approves it by logging in again (else only the CLI). */
  readonly sshCheckLoginUrl?: (checkId: string) => string;
  readonly log: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
  /** Interactive logins one source address may start per minute. */
  readonly pendingLoginsPerSourcePerMinute: number;
  /** Unread map-stream bytes a client may leave queued, at least (map.ts). */
  readonly mapBacklogBytes?: number;
  /** Told about map responses, fan-out and registrations (metrics); silent when absent. */
  readonly observer?: ControlObserver;
}

/** The request's JSON body; too large (the HTTP/2 layer's limit) or too slow fails with its status. */
async function readJson(req: Http2Request): Promise<unknown> {
  let body: Buffer;
  try {
    body = await req.body();
  } catch (err) {
    if (err instanceof BodyError) throw new ProtocolError(err.status, err.message);
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ProtocolError(400, 'request body is not JSON');
  }
  const problem = jsonProblem(value);
  if (problem) throw new ProtocolError(400, `request body ${problem}`);
  return value;
}

function reply(res: Http2Response, status: number, body: unknown): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * Aborts when the client goes away before its answer, so a long poll stops waiting for it. A stream that closes
 * after its answer aborts nothing: an abort builds a DOMException with a stack, 0.7 % of a mass connect's CPU.
 */
function closed(res: Http2Response): AbortSignal {
  const abort = new AbortController();
  res.onClose(() => {
    if (!res.answered) abort.abort();
  });
  return abort.signal;
}

export function createControl(deps: ControlDeps) {
  const observer = deps.observer ?? silentObserver;
  const primary = createPrimaryRoutes();
  const frames = createFrameEncoder();
  const mapper = createMapper({
    frames,
    tailnet: deps.tailnet,
    policy: deps.policy,
    primary,
    derpMap: deps.derpMap,
    primaryRoutes: (id) => primary.routesOf(id),
    certificates: deps.publishTxt !== undefined,
    onFanout: observer.fanout,
  });
  const register = createRegisterHandler(deps, observer);
  const setDns = createSetDnsHandler(deps);
  const minBacklogBytes = deps.mapBacklogBytes ?? defaultLimits.mapBacklogBytes;
  const map = createMapHandler({ tailnet: deps.tailnet, mapper, frames, observer, minBacklogBytes });
  const ssh = createSshActions(deps);

  /** Whatever a node's request changes is recorded as done by that node (or its machine, before it has one). */
  const onRequest = (req: Http2Request, res: Http2Response, peer: NoisePeer): Promise<void> => {
    const node = deps.tailnet.nodes.byMachineKey(peer.machineKey);
    const actor = node ? `node:${node.id}` : `machine:${peer.machineKey.slice(5, 17)}`;
    return runAs({ actor, door: 'control', source: peer.source }, () => handleRequest(req, res, peer));
  };

  async function handleRequest(req: Http2Request, res: Http2Response, peer: NoisePeer): Promise<void> {
    const path = pathOf(req.url);
    if (path === undefined) return reply(res, 400, { error: 'request target is not a valid URL' });
    try {
      if (req.method === 'POST' && path === '/machine/register') {
        const body = parseRegisterRequest(await readJson(req));
        return reply(res, 200, await register.handle(body, peer, closed(res)));
      }
      if (req.method === 'POST' && path === '/machine/map') {
        return await map.handle((await readJson(req)) as MapRequest, peer, res);
      }
      if (path.startsWith(sshActionPrefix)) {
        return reply(res, 200, await ssh.handle(req, peer, closed(res)));
      }
      if (req.method === 'POST' && path === '/machine/set-dns') return reply(res, 200, setDns(await readJson(req), peer));
      if (path.startsWith('/machine/')) return reply(res, 501, { error: 'not implemented' });
      return reply(res, 404, { error: 'not found' });
    } catch (err) {
      // The client reset the stream or went away: nobody is left to answer.
      if (res.closed) return;
      if (err instanceof StoreUnavailableError) return reply(res, 503, { error: err.message });
      if (err instanceof ProtocolError) {
        if (path === '/machine/register') observer.registrationFailed('malformed');
        return reply(res, err.status, { error: err.message });
      }
      deps.log.warn({ err: (err as Error).message, path }, 'control request failed');
      return reply(res, 500, { error: 'internal error' });
    }
  }

  return {
    onRequest,
    primary,
    mapper,
    /** Shutdown: no more offline timers, then every map stream ends, which tells its client to reconnect. */
    stop(): void {
      map.stop();
      mapper.stop();
    },
  };
}

export type Control = ReturnType<typeof createControl>;
