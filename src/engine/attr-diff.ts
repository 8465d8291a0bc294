/** Attribute-level differences between two JSON values, each named by a path such as `acls[2].dst` or `groups["group:ops"]`. */
import { isPlain } from './desired.ts';
import { sameJson } from './policy-doc.ts';

export interface AttrDiff {
  readonly path: string;
  /** undefined: the attribute is absent on that side. */
  readonly before: unknown;
  readonly after: unknown;
}

export const joinPath = (path: string, key: string | number): string =>
  typeof key === 'number'
    ? `${path}[${key}]`
    : /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)
      ? path
        ? `${path}.${key}`
        : key
      : `${path}[${JSON.stringify(key)}]`;

/**
 * Objects are compared key by key, lists of objects element by element; lists of plain values and anything
 * else differ as a whole (a tag list reads better as one before/after than as index changes).
 */
export function diffValues(before: unknown, after: unknown, path = ''): AttrDiff[] {
  if (sameJson(before, after)) return [];
  // A section added or removed as a whole reads best entry by entry, like one that changed.
  if (before === undefined && isStructured(after)) return diffValues(emptyLike(after), after, path);
  if (after === undefined && isStructured(before)) return diffValues(before, emptyLike(before), path);
  if (isPlain(before) && isPlain(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => diffValues(before[k], after[k], joinPath(path, k)));
  }
  if (Array.isArray(before) && Array.isArray(after) && [...before, ...after].every(isStructured)) {
    const n = Math.max(before.length, after.length);
    // An added or removed element is shown whole (a new ACL rule is one thing, not three attributes).
    return Array.from({ length: n }, (_, i) =>
      before[i] === undefined || after[i] === undefined
        ? [{ path: joinPath(path, i), before: before[i], after: after[i] }]
        : diffValues(before[i], after[i], joinPath(path, i)),
    ).flat();
  }
  return [{ path: path || '(value)', before, after }];
}

/** An object, or a non-empty list of objects/lists (a list of plain values is one attribute). */
const isStructured = (v: unknown): boolean =>
  isPlain(v) || (Array.isArray(v) && v.length > 0 && v.every((x) => isPlain(x) || Array.isArray(x)));

const emptyLike = (v: unknown) => (Array.isArray(v) ? [] : {});
