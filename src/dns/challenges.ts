/**
 * ACME DNS-01 challenge records: the TXT values nodes publish for `_acme-challenge.<their FQDN>` through
 * /machine/set-dns, kept in memory only while a validation can need them. A record lives at most `ttlMs`
 * after it was set, and only `usedGraceMs` after the responder first served it (the ACME server has then
 * looked; a few more lookups from other vantage points fit in the grace).
 */

/** ACME clients finish a DNS-01 validation in seconds to minutes; nothing is kept longer than this. */
export const defaultTtlMs = 10 * 60_000;
/** How long a record stays after its first answer. */
export const defaultUsedGraceMs = 60_000;
/** Values kept per name: a wildcard and its base name share one challenge name, so two orders may overlap. */
const maxValuesPerName = 4;

interface Entry {
  readonly value: string;
  readonly expiresAt: number;
  /** When it was first served; undefined until then. */
  usedAt?: number;
}

export interface ChallengeStore {
  /** Adds a TXT value for a name (lower case, no final dot); the oldest goes when the name holds too many. */
  set(name: string, value: string): void;
  /** The live values of a name, marking them served. */
  serve(name: string): string[];
  /** Whether any live record sits at or below this name (so it is not NXDOMAIN). */
  has(name: string): boolean;
  /** How many names hold live records. */
  size(): number;
}

export function createChallengeStore(opts: { ttlMs?: number; usedGraceMs?: number; now?: () => number } = {}): ChallengeStore {
  const ttlMs = opts.ttlMs ?? defaultTtlMs;
  const graceMs = opts.usedGraceMs ?? defaultUsedGraceMs;
  const now = opts.now ?? Date.now;
  const records = new Map<string, Entry[]>();

  const alive = (e: Entry, t: number) => t < e.expiresAt && (e.usedAt === undefined || t < e.usedAt + graceMs);
  /** Live entries of a name; drops the name once none is left, so memory follows what is in use. */
  const live = (name: string): Entry[] => {
    const t = now();
    const kept = (records.get(name) ?? []).filter((e) => alive(e, t));
    if (kept.length) records.set(name, kept);
    else records.delete(name);
    return kept;
  };
  const sweep = () => {
    for (const name of [...records.keys()]) live(name);
  };

  return {
    set(name, value) {
      sweep();
      const others = live(name).filter((e) => e.value !== value);
      records.set(name, [...others, { value, expiresAt: now() + ttlMs }].slice(-maxValuesPerName));
    },
    serve(name) {
      const t = now();
      const entries = live(name);
      for (const e of entries) e.usedAt ??= t;
      return entries.map((e) => e.value);
    },
    has(name) {
      sweep();
      for (const n of records.keys()) if (n === name || n.endsWith(`.${name}`)) return true;
      return false;
    },
    size() {
      sweep();
      return records.size;
    },
  };
}
