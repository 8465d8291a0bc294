/**
 * The modules the in-process benches drive, loaded from a `src/` directory of choice (`--src`), so one bench
 * compares two checkouts: this one's and, say, an export of main's before a change.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** How long an in-process bench waits for a phase's last flush: a burst may be held 2 s (mapper.ts maxStormMs), then written. */
export const flushSettleMs = 2600;

export async function loadSrc(dir: string) {
  const src = (path: string) => import(pathToFileURL(resolve(dir, path)).href);
  return {
    ...(await src('store/sqlite.ts')),
    ...(await src('state/tailnet.ts')),
    ...(await src('state/policy-view.ts')),
    ...(await src('state/routes.ts')),
    ...(await src('control/mapper.ts')),
    ...(await src('control/frames.ts')),
    ...(await src('audit/context.ts')),
  };
}
