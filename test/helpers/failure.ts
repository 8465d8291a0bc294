/** Runs a real-client test step and, when it fails, prints the daemons' and the server's log tails first. */
import type { Harness } from '../harness/tailscaled.ts';

export async function withLogs<T>(harness: Harness, serverLog: () => string, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    for (const d of harness.daemons) d.dumpLogs(40);
    console.error(`--- server log (${what}) ---\n${serverLog().split('\n').slice(-40).join('\n')}`);
    throw err;
  }
}
