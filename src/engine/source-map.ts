/**
 * Positions in the generated policy traced back to the desired-state file the user wrote: a problem the policy
 * engine reports at `policy:32:7` (a failing test, an unknown group) is quoted at the same element of
 * `healthcare.hujson`, found by its path (`tests[0].accept[0]`; `tagOwners` is the desired state's `tags`).
 */
import { parseHujson, type JsonNode } from '../policy/hujson.ts';
import type { PolicyError } from '../policy/index.ts';
import type { Pos } from '../policy/types.ts';

/** The text a desired state was read from, when it came from a HuJSON/JSON file. */
export interface DesiredSource {
  readonly file: string;
  readonly text: string;
}

type Path = (string | number)[];
/** Generated policy sections whose name differs in the desired state. */
const sectionNames: Record<string, string> = { tagOwners: 'tags' };

const before = (a: Pos, b: Pos) => a.line < b.line || (a.line === b.line && a.col <= b.col);

/** The path of the innermost element that starts at or last before `at` (document order). */
function pathAt(node: JsonNode, at: Pos, path: Path = []): Path {
  const children: [string | number, Pos, JsonNode][] =
    node.kind === 'object' ? node.entries.map((e) => [e.key, e.keyPos, e.value]) : node.kind === 'array' ? node.items.map((v, i) => [i, v.pos, v]) : [];
  let found = path;
  for (const [key, start, child] of children) {
    if (!before(start, at)) break;
    found = pathAt(child, at, [...path, key]);
  }
  return found;
}

/** The position of the deepest element along `path` (the parent when the element itself is not in the file). */
function posOf(node: JsonNode, path: Path): Pos {
  let current = node;
  let pos = node.pos;
  for (const key of path) {
    const next =
      current.kind === 'object' ? current.entries.find((e) => e.key === key) : current.kind === 'array' ? { keyPos: undefined, value: current.items[key as number] } : undefined;
    if (!next?.value) break;
    pos = next.keyPos ?? next.value.pos;
    current = next.value;
  }
  return pos;
}

/** A function quoting policy problems at their place in the desired file; without a source, their own message. */
export function policyLocator(generated: string, source: DesiredSource | undefined): (e: PolicyError) => string {
  let trees: { generated: JsonNode; desired: JsonNode } | null | undefined;
  const parse = () => {
    try {
      return source ? { generated: parseHujson(generated, 'policy'), desired: parseHujson(source.text, source.file) } : null;
    } catch {
      // The desired file used JSON5 syntax HuJSON does not have: positions cannot be traced.
      return null;
    }
  };
  return (e) => {
    trees ??= parse();
    const path = trees ? pathAt(trees.generated, e) : [];
    if (!trees || !source || path.length === 0) return e.message;
    const pos = posOf(trees.desired, [sectionNames[path[0] as string] ?? path[0]!, ...path.slice(1)]);
    return `${source.file}:${pos.line}:${pos.col}: ${e.detail}`;
  };
}
