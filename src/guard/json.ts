/**
 * Checks on parsed JSON that the parser does not make: how deep it nests (deep values overflow the stack of
 * whatever walks them next, serialisation included) and keys that would reach an object's prototype.
 */

/** Deep enough for any real Hostinfo, policy or API body; far from the depth where recursion breaks. */
export const maxJsonDepth = 64;

/** What is wrong with a parsed JSON value, as the end of a sentence ("nests deeper than …"), or undefined. */
export function jsonProblem(value: unknown, maxDepth = maxJsonDepth): string | undefined {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > maxDepth) return `nests deeper than ${maxDepth} levels`;
    if (Array.isArray(v)) {
      for (const item of v) stack.push([item, depth + 1]);
      continue;
    }
    for (const [key, item] of Object.entries(v)) {
      if (key === '__proto__' || (key === 'constructor' && item !== null && typeof item === 'object' && 'prototype' in item)) {
        return `has the key "${key}", which is not allowed (it could reach an object's prototype)`;
      }
      stack.push([item, depth + 1]);
    }
  }
  return undefined;
}
