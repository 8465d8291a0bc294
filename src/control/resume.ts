/**
 * Presence across a restart of the server. Stopping control does not take a tailnet's nodes offline: their
 * tunnels keep working and each client reconnects within seconds. So a stop writes which nodes were connected,
 * and the next start shows them online until each connects again or `graceMs` has passed; those not back by then
 * go offline, last seen at the stop. Before, every client saw its peers flap offline and back while the fleet
 * reconnected (each flap a map update to all of the node's peers: five of every six frames of a 10,000-node
 * restart), and an HA subnet route could move to whichever router happened to reconnect first.
 *
 * The file is removed as it is read, so a server that crashes leaves nothing to resume: its nodes start offline.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Nodes } from '../state/nodes.ts';

const fileName = 'connected-at-stop.json';
/** Long enough for a large fleet to reconnect (10,000 clients take ~25 s on 2 cores), short enough to be honest. */
export const defaultResumeGraceMs = 60_000;

interface Saved {
  readonly stoppedAt: string;
  readonly nodes: readonly number[];
}

export interface Resume {
  /** Writes the nodes to resume at the next start; call once the server stops taking connections. */
  save(): void;
}

/** Resumes the nodes the last stop wrote (a file that cannot be read is reported and ignored). */
export function resumePresence(dataDir: string, nodes: Nodes, warn: (msg: string) => void, graceMs = defaultResumeGraceMs): Resume {
  const file = join(dataDir, fileName);
  const saved = take(file, warn);
  let timer: NodeJS.Timeout | undefined;
  if (saved) {
    const stoppedAt = new Date(saved.stoppedAt);
    nodes.resume(saved.nodes);
    const left = stoppedAt.getTime() + graceMs - Date.now();
    if (left <= 0) nodes.endResume(stoppedAt);
    else timer = setTimeout(() => nodes.endResume(stoppedAt), left).unref();
  }
  return {
    save() {
      clearTimeout(timer);
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ stoppedAt: new Date().toISOString(), nodes: nodes.toResume() } satisfies Saved), { mode: 0o600 });
      renameSync(tmp, file);
    },
  };
}

function take(file: string, warn: (msg: string) => void): Saved | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Partial<Saved>;
    if (typeof saved.stoppedAt !== 'string' || Number.isNaN(Date.parse(saved.stoppedAt))) throw new Error('no valid stoppedAt');
    if (!Array.isArray(saved.nodes) || !saved.nodes.every(Number.isSafeInteger)) throw new Error('nodes is not a list of node ids');
    return saved as Saved;
  } catch (err) {
    warn(`${file}: ignored, every node starts offline (${(err as Error).message})`);
    return undefined;
  } finally {
    rmSync(file, { force: true });
  }
}
