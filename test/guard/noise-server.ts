/** An in-process server without DERP for Noise-level tests, and a one-request-per-connection client for it. */
import type { StartOptions } from '../../src/server.ts';
import { inProcessServer } from '../helpers/server.ts';
import { dialNoise, h2Request, h2Session } from '../control/noise-client.ts';

export async function noiseServer(options: StartOptions = {}) {
  const server = await inProcessServer({ derp: { enabled: false, regionId: 999, regionCode: 'x', stunListenAddr: '', mapPath: '' } }, options);
  const port = Number(new URL(server.url).port);
  const key = (await (await fetch(`${server.url}/key?v=130`, { headers: { connection: 'close' } })).json()) as { publicKey: string };
  const serverPublic = Buffer.from(key.publicKey.slice('mkey:'.length), 'hex');
  /** One request on a fresh Noise connection (so a fresh machine key). */
  const post = async (path: string, body: unknown) => {
    const client = await dialNoise(port, serverPublic);
    const session = h2Session(client);
    try {
      const res = await h2Request(session, path, typeof body === 'string' ? body : JSON.stringify(body));
      return { status: res.status, text: res.body.toString() };
    } finally {
      session.destroy();
      client.conn.destroy();
    }
  };
  return { server, port, serverPublic, post };
}
