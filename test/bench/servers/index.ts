/** Starts a bench server by kind. */
import { startHeadscale } from './headscale.ts';
import type { BenchServer, ServerKind } from './server.ts';
import { startTailplane } from './tailplane.ts';

export type { BenchServer, ServerKind } from './server.ts';

export function startBenchServer(kind: ServerKind): Promise<BenchServer> {
  return kind === 'headscale' ? startHeadscale() : startTailplane();
}
