/**
 * Server-sent events for the console: one "change" event whenever machines or users change (joined, left, online,
 * offline, renamed, retagged, routes, hostname or version), coalesced to at most a few per second; the page then
 * re-fetches what it shows. Endpoint and key-only updates (frequent, invisible in the console) are not sent.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Change } from '../state/changes.ts';
import type { Tailnet } from '../state/tailnet.ts';

const coalesceMs = 250;
const heartbeatMs = 25_000;

const visible = (c: Change) =>
  c.kind !== 'node-updated' || c.fields.some((f) => f !== 'endpoints' && f !== 'keys');

/** Registers GET /events (under the console's prefix); open streams end when the server closes. */
export function eventStreams(app: FastifyInstance, tailnet: Tailnet): void {
  const open = new Set<() => void>();
  app.addHook('preClose', async () => [...open].forEach((close) => close()));
  app.get('/events', async (req, reply) => stream(reply, tailnet, req, open));
}

function stream(reply: FastifyReply, tailnet: Tailnet, req: FastifyRequest, open: Set<() => void>): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.write('retry: 2000\n\n');
  let pending: NodeJS.Timeout | undefined;
  const unsubscribe = tailnet.subscribe((c) => {
    if (!visible(c) || pending) return;
    pending = setTimeout(() => {
      pending = undefined;
      res.write('event: change\ndata: {}\n\n');
    }, coalesceMs);
  });
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
  const close = () => {
    unsubscribe();
    clearInterval(heartbeat);
    clearTimeout(pending);
    open.delete(close);
    res.end();
  };
  open.add(close);
  req.raw.on('close', close);
}
