/** Loads a desired state from a TypeScript/JavaScript module, a HuJSON/JSON file, or an object, and validates it. */
import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import JSON5 from 'json5';
import { DesiredStateError, validateDesired, type DesiredState } from './desired.ts';
import type { DesiredSource } from './source-map.ts';

const moduleExtensions = new Set(['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs']);
/** The file each desired state loaded from HuJSON/JSON came from, so problems can be quoted at their place in it. */
const sources = new WeakMap<DesiredState, DesiredSource>();

export function desiredSource(desired: DesiredState): DesiredSource | undefined {
  return sources.get(desired);
}

/**
 * A module must export the state as `default` or `desired` (an object, or a function returning one). It is
 * imported as is: TypeScript needs a loader such as tsx (the `tailplane` binary registers it), and the module must
 * be ESM (in a `"type": "module"` package, or named .mts).
 */
export async function loadDesired(source: string | object, opts: { version?: string; text?: string } = {}): Promise<DesiredState> {
  if (typeof source !== 'string') return validateDesired(source, 'desired state object');
  const file = resolve(source);
  // A long-running process (sync) imports an edited module again under a new version.
  if (moduleExtensions.has(extname(file))) return validateDesired(await fromModule(file, opts.version), source);
  const text = opts.text ?? readSource(file, source);
  try {
    const desired = validateDesired(JSON5.parse(text), source);
    sources.set(desired, { file: source, text });
    return desired;
  } catch (err) {
    if (err instanceof DesiredStateError) throw err;
    const e = err as Error & { lineNumber?: number; columnNumber?: number };
    const where = e.lineNumber ? `${source}:${e.lineNumber}:${e.columnNumber}` : source;
    throw new DesiredStateError([{ path: '', message: `${where}: ${e.message.replace(/^JSON5: /, '')}` }], source);
  }
}

function readSource(file: string, source: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new DesiredStateError([{ path: '', message: `cannot read ${source}: ${(err as Error).message}` }], source);
  }
}

async function fromModule(file: string, version?: string): Promise<unknown> {
  const url = pathToFileURL(file).href + (version ? `?v=${encodeURIComponent(version)}` : '');
  const mod = (await import(url)) as Record<string, unknown>;
  const value = mod.desired ?? mod.default;
  if (value === undefined) {
    throw new DesiredStateError([{ path: '', message: `${file} exports neither "desired" nor a default` }], file);
  }
  return typeof value === 'function' ? await (value as () => unknown)() : value;
}
