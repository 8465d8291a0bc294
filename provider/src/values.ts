/** Typed reads of attribute values from decoded cty objects (null when absent, unknown or of another type). */
import type { CtyObject, CtyValue } from './cty.ts';

export const str = (o: CtyObject, k: string): string | null => (typeof o[k] === 'string' ? (o[k] as string) : null);

export const bool = (o: CtyObject, k: string): boolean | null => (typeof o[k] === 'boolean' ? (o[k] as boolean) : null);

/** A list or set of strings, or null when the attribute is null or not wholly known. */
export function strList(o: CtyObject, k: string): string[] | null {
  const v = o[k];
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
}

export const list = (xs: readonly string[]): CtyValue[] => [...xs];

export const sorted = (xs: readonly string[]): string[] => [...xs].sort();
