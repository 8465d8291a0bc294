/** A fleet of simulated nodes: connects them through a concurrency limit and waits for frames across many of them. */
import { performance } from 'node:perf_hooks';
import { createLimiter } from './limit.ts';
import { createSimNode, type SimNode, type Target } from './node.ts';
import type { MapResponse } from '../../../src/control/wire.ts';

/** When the last of several nodes saw a matching frame; `missing` counts nodes that timed out. */
export interface Arrival {
  readonly last: number;
  readonly matched: number;
  readonly missing: number;
}

/** Attempts per connection: a saturated server can miss the 5 s handshake deadline, and real clients retry. */
const attempts = 5;

export function createFleet(target: Target, opts: { concurrency: number }) {
  const limit = createLimiter(opts.concurrency);
  const nodes: SimNode[] = [];
  let retries = 0;
  /** Frames received by nodes that have left the fleet. */
  let framesOfLeft = 0;
  /** Runs a connection step under the limit, retrying after a back-off when it fails. */
  const withRetry = async (node: SimNode, step: () => Promise<void>) => {
    for (let i = 1; ; i++) {
      try {
        return await limit(step);
      } catch (err) {
        node.close();
        if (i >= attempts) throw err;
        retries++;
        await new Promise((r) => setTimeout(r, 250 * 2 ** i));
      }
    }
  };
  return {
    target,
    nodes,
    /** Connection attempts that failed and were retried. */
    retries: () => retries,
    /** Map frames received by every node that joined, those that left since included. */
    frames: () => nodes.reduce((sum, n) => sum + n.metrics.frames, framesOfLeft),
    /** Creates, connects, registers and streams one node; the limit covers the handshake and registration. */
    async join(index: number, authKey: string, name?: string): Promise<SimNode> {
      const node = createSimNode(index, name);
      nodes.push(node);
      try {
        await withRetry(node, async () => {
          await node.connect(target);
          await node.register(authKey);
        });
        await node.openStream();
      } catch (err) {
        // A node that never got in is dropped from the fleet; the scenario reports it as missing.
        node.close();
        nodes.splice(nodes.indexOf(node), 1);
        throw err;
      }
      return node;
    },
    /** Re-dials every node (after a restart) and reopens its stream, with the same limit on handshakes. */
    async reconnect(node: SimNode): Promise<void> {
      node.close();
      await withRetry(node, () => node.connect(target));
      await node.openStream();
    },
    /** Logs a node out (an ephemeral node is then deleted) and drops it from the fleet. */
    async leave(node: SimNode): Promise<void> {
      nodes.splice(nodes.indexOf(node), 1);
      try {
        await node.logout();
      } finally {
        node.close();
        framesOfLeft += node.metrics.frames;
      }
    },
    close(): void {
      for (const n of nodes) n.close();
    },
  };
}

/**
 * Resolves when every node has received a frame matching `match` (arrival time of the last one), or after
 * the timeout with the count still missing. Listeners are attached before `trigger` runs, so nothing is lost.
 */
export async function waitForFrames(
  nodes: readonly SimNode[],
  match: (m: MapResponse, node: SimNode) => boolean,
  trigger: () => Promise<unknown>,
  timeoutMs: number,
): Promise<Arrival> {
  let last = 0;
  let matched = 0;
  const offs: (() => void)[] = [];
  const all = Promise.all(
    nodes.map(
      (n) =>
        new Promise<void>((res) => {
          const off = n.onFrame((f) => {
            if (!match(f.map, n)) return;
            off();
            matched++;
            last = Math.max(last, f.at);
            res();
          });
          offs.push(off);
        }),
    ),
  );
  await trigger();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([all, new Promise((res) => (timer = setTimeout(res, timeoutMs)))]);
  clearTimeout(timer);
  for (const off of offs) off();
  return { last: last || performance.now(), matched, missing: nodes.length - matched };
}
