/**
 * Points a policy problem at the desired-state file: a problem the policy engine finds at `line:col` of the
 * rendered policy is traced to its JSON path there (`tests[0].accept[0]`), then to that path in the desired
 * HuJSON file, so a failed round names `tailnet/desired.hujson:14:19` — the line to fix in Git.
 */
import { parseHujson, type JsonEntry, type JsonNode } from '../policy/hujson.ts';
import type { Pos } from '../policy/errors.ts';

export type JsonPath = readonly (string | number)[];

export interface Located {
  /** `file:line:col` in the desired-state file when it can be traced there, else the desired path. */
  readonly where: string;
  readonly file?: string;
  readonly line?: number;
  readonly col?: number;
  readonly detail: string;
}

/** The rendered policy names some sections differently from the desired state. */
const sectionOfPolicy: Record<string, string> = { tagOwners: 'tags' };

const before = (a: Pos, b: Pos) => a.line < b.line || (a.line === b.line && a.col <= b.col);

/** The path of the last value or key starting at or before `pos` (an engine problem points at a value's start). */
export function pathAt(root: JsonNode, pos: Pos): JsonPath {
  let best: JsonPath = [];
  const visit = (node: JsonNode, path: JsonPath) => {
    if (!before(node.pos, pos)) return;
    best = path;
    if (node.kind === 'object') for (const e of node.entries) if (before(e.keyPos, pos)) (best = [...path, e.key]), visit(e.value, [...path, e.key]);
    if (node.kind === 'array') node.items.forEach((item, i) => visit(item, [...path, i]));
  };
  visit(root, []);
  return best;
}

/** Where the value at `path` starts in the tree; the deepest existing ancestor's position when the path runs out. */
export function posAt(root: JsonNode, path: JsonPath): Pos {
  let node = root;
  for (const key of path) {
    const next =
      node.kind === 'object' && typeof key === 'string'
        ? node.entries.find((e) => e.key === key)?.value
        : node.kind === 'array' && typeof key === 'number'
          ? node.items[key]
          : undefined;
    if (!next) break;
    node = next;
  }
  return node.pos;
}

export const renderPath = (path: JsonPath) =>
  path.map((k, i) => (typeof k === 'number' ? `[${k}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? (i ? `.${k}` : k) : `[${JSON.stringify(k)}]`)).join('');

/**
 * Traces each `policy:line:col: detail` line of a problem list (the engine's review or the server's refusal) to
 * the desired file; `desiredText` undefined (a TypeScript module) names the path in the desired state instead.
 */
export function locateProblems(problems: readonly string[], renderedPolicy: string, desiredFile: string, desiredText?: string): Located[] {
  const rendered = safeParse(renderedPolicy);
  const desired = desiredText === undefined ? undefined : parseJson5Tree(desiredText);
  return problems.flatMap((p) => p.split('\n')).flatMap((line): Located[] => {
    const m = /^(?:policy|policy\.hujson):(\d+):(\d+): (.*)$/.exec(line.trim());
    // Lines without a position (headers, a refused node write) stay in the round's message only.
    if (!m || !rendered) return [];
    const [section, ...rest] = pathAt(rendered, { line: Number(m[1]), col: Number(m[2]) });
    const path: JsonPath = section === undefined ? [] : [sectionOfPolicy[section as string] ?? section, ...rest];
    if (!desired) return [{ where: `${desiredFile} (${renderPath(path)})`, detail: m[3]! }];
    const pos = posAt(desired, path);
    return [{ where: `${desiredFile}:${pos.line}:${pos.col}`, file: desiredFile, line: pos.line, col: pos.col, detail: m[3]! }];
  });
}

function safeParse(text: string): JsonNode | undefined {
  try {
    return parseHujson(text, 'text');
  } catch {
    return undefined;
  }
}

/**
 * The syntax tree of a JSON5 desired-state file (unquoted keys, single quotes, comments, trailing commas), with
 * positions; undefined when it does not parse (the loader reports that error itself).
 */
export function parseJson5Tree(text: string): JsonNode | undefined {
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const pos = (): Pos => ({ line, col: i - lineStart + 1 });
  const fail = (): never => {
    throw new Error('syntax');
  };
  const advance = () => {
    if (text[i] === '\n') (line++, (lineStart = i + 1));
    i++;
  };
  const skip = () => {
    for (;;) {
      if (/\s/.test(text[i] ?? '')) advance();
      else if (text.startsWith('//', i)) while (i < text.length && text[i] !== '\n') advance();
      else if (text.startsWith('/*', i)) {
        while (i < text.length && !text.startsWith('*/', i)) advance();
        (advance(), advance());
      } else return;
    }
  };
  const string = (): string => {
    const quote = text[i];
    advance();
    let out = '';
    while (i < text.length && text[i] !== quote) {
      if (text[i] === '\\') advance();
      out += text[i];
      advance();
    }
    if (i >= text.length) fail();
    advance();
    return out;
  };
  /** A bare word (an unquoted key, a number, true/false/null): only its position matters here. */
  const word = (pattern: RegExp): string => {
    const w = pattern.exec(text.slice(i))?.[0] ?? fail();
    for (let k = 0; k < w.length; k++) advance();
    return w;
  };
  const value = (): JsonNode => {
    skip();
    const at = pos();
    const c = text[i];
    if (c === '{' || c === '[') {
      advance();
      const entries: JsonEntry[] = [];
      const items: JsonNode[] = [];
      for (;;) {
        skip();
        if (text[i] === (c === '{' ? '}' : ']')) break;
        if (c === '{') {
          const keyPos = pos();
          const key = text[i] === '"' || text[i] === "'" ? string() : word(/^[A-Za-z_$][\w$]*/);
          skip();
          if (text[i] !== ':') fail();
          advance();
          entries.push({ key, keyPos, value: value() });
        } else items.push(value());
        skip();
        if (text[i] === ',') advance();
        else if (text[i] !== (c === '{' ? '}' : ']')) fail();
      }
      advance();
      return c === '{' ? { kind: 'object', pos: at, entries } : { kind: 'array', pos: at, items };
    }
    if (c === '"' || c === "'") return { kind: 'string', pos: at, value: string() };
    return { kind: 'string', pos: at, value: word(/^[^,\]}\s]+/) };
  };
  try {
    return value();
  } catch {
    return undefined;
  }
}
