/**
 * Server-sent events for the console: one "change" event whenever machines or users change (joined, left, online,
 * offline, renamed, retagged, routes, hostname or version), and one "ssh-check" event when an SSH check is opened,
 * decided or times out, each coalesced to at most a few per second; the page then re-fetches what it shows.
 * Endpoint and key-only updates (frequent, invisible in the console) are not sent.
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
  const pending = new Map<string, NodeJS.Timeout>();
  const send = (event: string) => {
    if (pending.has(event)) return;
    pending.set(event, setTimeout(() => {
      pending.delete(event);
      res.write(`event: ${event}\ndata: {}\n\n`);
    }, coalesceMs));
  };
  const unsubscribe = [tailnet.subscribe((c) => visible(c) && send('change')), tailnet.sshChecks.subscribe(() => send('ssh-check'))];
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
  const close = () => {
    unsubscribe.forEach((u) => u());
    clearInterval(heartbeat);
    pending.forEach((t) => clearTimeout(t));
    open.delete(close);
    res.end();
  };
  open.add(close);
  req.raw.on('close', close);
}
