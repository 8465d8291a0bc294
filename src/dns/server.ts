/**
 * A small DNS server over UDP and TCP (RFC 1035, RFC 7766 framing) that hands each well-formed query to an
 * answer function. Both sockets are bound before start() resolves, so a taken port is an error at start;
 * malformed packets are dropped, never thrown.
 */
import dgram from 'node:dgram';
import { isIP, createServer, type Server as TcpServer, type Socket } from 'node:net';
import { buildResponse, parseQuery, type Answer, type Query } from './message.ts';

/** What to answer; null drops the query without a reply. */
export type AnswerFn = (q: Query) => Answer | null;

export interface DnsServerOptions {
  readonly host: string;
  /** 0 picks a free port (the same one for UDP and TCP). */
  readonly port: number;
  readonly answer: AnswerFn;
  readonly log?: { warn(obj: object, msg?: string): void };
}

export interface DnsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** A TCP client idle this long is disconnected. */
const tcpIdleMs = 10_000;
/** TCP frames are length-prefixed with 16 bits, so no frame is larger. */
const maxTcpFrame = 0xffff;
/** Largest UDP answer we send to an EDNS client (the common safe size, RFC 9715). */
const maxUdpEdns = 1232;
/** Attempts to find a port free for both UDP and TCP when the caller asked for any port. */
const anyPortTries = 5;

export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  const respond = (packet: Buffer, udp: boolean): Buffer | null => {
    const q = parseQuery(packet);
    if (!q) return null;
    try {
      const a = opts.answer(q);
      return a && buildResponse(q, a, udp ? Math.min(q.udpSize, maxUdpEdns) : maxTcpFrame);
    } catch (err) {
      opts.log?.warn({ err: (err as Error).message, name: q.name }, 'dns answer failed');
      return null;
    }
  };
  for (let attempt = 1; ; attempt++) {
    const udp = await bindUdp(opts.host, opts.port, respond);
    try {
      const tcp = await bindTcp(opts.host, udp.port, respond);
      return {
        port: udp.port,
        async close() {
          await Promise.all([new Promise<void>((r) => udp.socket.close(() => r())), tcp.close()]);
        },
      };
    } catch (err) {
      udp.socket.close();
      const retry = opts.port === 0 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < anyPortTries;
      if (!retry) throw err;
    }
  }
}

function bindUdp(host: string, port: number, respond: (b: Buffer, udp: boolean) => Buffer | null) {
  const socket = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
  socket.on('message', (msg, rinfo) => {
    const out = respond(msg, true);
    if (out) socket.send(out, rinfo.port, rinfo.address, () => {});
  });
  return new Promise<{ socket: dgram.Socket; port: number }>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      // Send errors (an unreachable client) are per packet; the socket stays up.
      socket.on('error', () => {});
      resolve({ socket, port: socket.address().port });
    });
  });
}

function bindTcp(host: string, port: number, respond: (b: Buffer, udp: boolean) => Buffer | null) {
  const conns = new Set<Socket>();
  const server: TcpServer = createServer((sock) => {
    conns.add(sock);
    sock.setTimeout(tcpIdleMs, () => sock.destroy());
    sock.on('error', () => {});
    sock.on('close', () => conns.delete(sock));
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const frame = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + frame.length);
        const out = respond(frame, false);
        // A malformed query on a stream leaves nothing sensible to say: close it.
        if (!out) return void sock.destroy();
        const len = Buffer.alloc(2);
        len.writeUInt16BE(out.length);
        sock.write(Buffer.concat([len, out]));
      }
    });
  });
  return new Promise<{ close(): Promise<void> }>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        close: () =>
          new Promise<void>((r) => {
            for (const c of conns) c.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
