/** A minimal SOCKS5 CONNECT client (no auth), to reach tailnet addresses through tailscaled's proxy. */
import { connect, type Socket } from 'node:net';

export function socksConnect(proxy: string, host: string, port: number, timeoutMs = 15_000): Promise<Socket> {
  const [proxyHost, proxyPort] = [proxy.slice(0, proxy.lastIndexOf(':')), Number(proxy.slice(proxy.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const sock = connect(proxyPort, proxyHost);
    const timer = setTimeout(() => (sock.destroy(), reject(new Error(`SOCKS5 connect to ${host}:${port} timed out`))), timeoutMs);
    let stage = 0;
    let buf = Buffer.alloc(0);
    sock.on('error', (e) => (clearTimeout(timer), reject(e)));
    sock.on('connect', () => sock.write(Buffer.from([5, 1, 0])));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (stage === 0 && buf.length >= 2) {
        if (buf[1] !== 0) return reject(new Error('SOCKS5 proxy wants authentication'));
        buf = buf.subarray(2);
        stage = 1;
        const addr = Buffer.from(host.split('.').map(Number));
        const req = Buffer.concat([Buffer.from([5, 1, 0, 1]), addr, Buffer.from([port >> 8, port & 255])]);
        sock.write(req);
      }
      if (stage === 1 && buf.length >= 10) {
        clearTimeout(timer);
        sock.off('data', onData);
        if (buf[1] !== 0) return reject(new Error(`SOCKS5 connect failed with code ${buf[1]}`));
        const rest = buf.subarray(10);
        if (rest.length) sock.unshift(rest);
        resolve(sock);
      }
    };
    sock.on('data', onData);
  });
}

/**
 * True when a TCP connection through a tailscaled SOCKS5 proxy reaches host:port and the listener there echoes
 * a byte back; false when the connection is refused, dropped by a packet filter, or silent.
 */
export async function echoesThrough(proxy: string, host: string, port: number, timeouts = { connectMs: 4_000, replyMs: 3_000 }): Promise<boolean> {
  try {
    const sock = await socksConnect(proxy, host, port, timeouts.connectMs);
    const echoed = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeouts.replyMs);
      const done = (ok: boolean) => (clearTimeout(timer), resolve(ok));
      sock.once('data', () => done(true));
      sock.once('error', () => done(false));
      sock.once('close', () => done(false));
      sock.write('x');
    });
    sock.destroy();
    return echoed;
  } catch {
    return false;
  }
}
