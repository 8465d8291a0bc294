/**
 * Last-resort protection of the HTTP listener: a request target that is not a parseable URL is answered 400
 * before any route sees it, and anything a dispatcher throws is logged and answered instead of ending the
 * process. Every route on the listener (control, DERP, admin API, whatever is added later) inherits this.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** The subset of pino's API this module uses. */
export interface GuardLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A request target as a URL, or undefined when it is not one (`//[`, `http://[`, `//a:b@`). */
export function targetOf(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://target');
  } catch {
    return undefined;
  }
}

/** The path of a request target, or undefined when the target is not a URL. */
export const pathOf = (target: string | undefined): string | undefined => targetOf(target)?.pathname;

/** Printable head of a request target for a log line: at most 200 characters, control characters escaped. */
const shown = (target: string | undefined) => JSON.stringify((target ?? '').slice(0, 200));

function respond(socket: Duplex, status: string, text: string): void {
  socket.on('error', () => {});
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
}

/** Wraps the listener's `request` dispatch. */
export function guardRequests(log: GuardLogger, dispatch: (req: IncomingMessage, res: ServerResponse) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (pathOf(req.url) === undefined) {
      log.warn({ remote: req.socket.remoteAddress, target: shown(req.url) }, 'refused a request whose target is not a URL');
      res.writeHead(400, { 'content-type': 'text/plain', connection: 'close' }).end('request target is not a valid URL');
      return;
    }
    try {
      dispatch(req, res);
    } catch (err) {
      log.error({ err: (err as Error)?.message, target: shown(req.url) }, 'request dispatch failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain', connection: 'close' }).end('internal error');
      else res.destroy();
    }
  };
}

/** Wraps the listener's `upgrade` dispatch; an upgrade nobody takes is answered 404. */
export function guardUpgrades(log: GuardLogger, dispatch: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (pathOf(req.url) === undefined) {
      log.warn({ remote: req.socket.remoteAddress, target: shown(req.url) }, 'refused an upgrade whose target is not a URL');
      return respond(socket, '400 Bad Request', 'request target is not a valid URL');
    }
    try {
      if (!dispatch(req, socket, head)) respond(socket, '404 Not Found', 'not found');
    } catch (err) {
      log.error({ err: (err as Error)?.message, target: shown(req.url) }, 'upgrade dispatch failed');
      socket.destroy();
    }
  };
}
