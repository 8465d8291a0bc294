/**
 * The control plane's request router over Noise: reads and size-limits JSON bodies, dispatches
 * /machine/register and /machine/map, and answers the optional endpoints with 501 like Headscale.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { DerpMap } from '../derp/index.ts';
import type { PolicyView } from '../state/policy-view.ts';
import type { Registrations } from '../state/registrations.ts';
import { createPrimaryRoutes } from '../state/routes.ts';
import type { Tailnet } from '../state/tailnet.ts';
import { createFrameEncoder } from './frames.ts';
import { createMapHandler } from './map.ts';
import { createMapper } from './mapper.ts';
import { createRegisterHandler, parseRegisterRequest, ProtocolError } from './register.ts';
import { silentObserver, type ControlObserver } from './observer.ts';
import type { NoisePeer } from './upgrade.ts';
import type { MapRequest } from './wire.ts';

/** Register and map requests are small; the client itself reads at most 1 MiB back. */
const maxBodyBytes = 1 << 20;

export interface ControlDeps {
  readonly tailnet: Tailnet;
  readonly registrations: Registrations;
  readonly policy: PolicyView;
  readonly derpMap: () => DerpMap;
  readonly serverUrl: string;
  readonly log: { warn(obj: object, msg?: string): void };
  /** Told about map responses, fan-out and registrations (metrics); silent when absent. */
  readonly observer?: ControlObserver;
}

async function readJson(req: Http2ServerRequest): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes) throw new ProtocolError(413, 'request body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ProtocolError(400, 'request body is not JSON');
  }
}

function reply(res: Http2ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function createControl(deps: ControlDeps) {
  const observer = deps.observer ?? silentObserver;
  const primary = createPrimaryRoutes();
  const mapper = createMapper({
    tailnet: deps.tailnet,
    policy: deps.policy,
    primary,
    derpMap: deps.derpMap,
    primaryRoutes: (id) => primary.routesOf(id),
    onFanout: observer.fanout,
  });
  const register = createRegisterHandler(deps, observer);
  const map = createMapHandler({ tailnet: deps.tailnet, mapper, frames: createFrameEncoder(), observer });

  async function onRequest(req: Http2ServerRequest, res: Http2ServerResponse, peer: NoisePeer): Promise<void> {
    const path = new URL(req.url, 'https://control').pathname;
    try {
      if (req.method === 'POST' && path === '/machine/register') {
        const body = parseRegisterRequest(await readJson(req));
        const abort = new AbortController();
        res.on('close', () => abort.abort());
        return reply(res, 200, await register.handle(body, peer, abort.signal));
      }
      if (req.method === 'POST' && path === '/machine/map') {
        return await map.handle((await readJson(req)) as MapRequest, peer, res);
      }
      if (path.startsWith('/machine/')) return reply(res, 501, { error: 'not implemented' });
      return reply(res, 404, { error: 'not found' });
    } catch (err) {
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
    stop(): void {
      mapper.stop();
      map.stop();
    },
  };
}

export type Control = ReturnType<typeof createControl>;
