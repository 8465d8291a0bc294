/**
 * What the bench scenarios need from a control server, so the same scenarios run against tailplane and
 * against Headscale: where nodes dial, which process to sample, provisioning, policy changes and a restart.
 */
import type { Target } from '../loadgen/fleet.ts';
import type { PolicyKind } from '../policy.ts';

export interface BenchServer {
  /** Shown in tables, e.g. "tailplane" or "headscale v0.29.2". */
  readonly name: string;
  /** Where simulated nodes dial; read it again after start(), the port may change. */
  target(): Promise<Target>;
  /** The server process, for CPU and RSS samples; a new one after a restart. */
  pid(): number;
  /** Users, policy and reusable pre-auth keys for the layout. */
  provision(kind: PolicyKind, blocks: number): Promise<BenchKeys>;
  /** Replaces the tailnet policy (policy.ts text). */
  setPolicy(text: string): Promise<void>;
  /** Stops the process; the data stays for start(). Safe to call twice. */
  stop(): Promise<void>;
  /** Starts the process again on the same data and resolves once it accepts connections. */
  start(): Promise<void>;
}

/** The pre-auth key a simulated node registers with. */
export interface BenchKeys {
  /** The key of node `index` (its block's user, or its block's tag for odd indexes in the grouped layout). */
  node(index: number): string;
  /** An ephemeral key owned by the user of `index`'s block: its nodes vanish when they log out. */
  ephemeral(index: number): string;
}

export type ServerKind = 'tailplane' | 'headscale';

/** The Noise target from a server's `/key` endpoint (the same on both servers). */
export async function keyTarget(baseUrl: string): Promise<Target> {
  const key = (await (await fetch(`${baseUrl}/key?v=130`)).json()) as { publicKey: string };
  return { url: baseUrl, serverKey: key.publicKey };
}
