/**
 * Named leases with a holder and an expiry: how writers outside the server (sync processes, a person's `apply`)
 * take turns. A lease lives in the server's memory: a restart frees every lease, and each holder takes it again
 * on its next renewal. The fencing token grows with every new holder, so a holder that lost its lease can tell.
 */
import type { Lease } from '../domain/batch.ts';
import { conflict, invalid } from './errors.ts';

/** A lease longer than this is a mistake (a crashed holder would block everyone for that long). */
const maxTtlSeconds = 3600;

export function createLeases(now: () => Date) {
  const leases = new Map<string, Lease>();
  let tokens = 0;
  const current = (name: string): Lease | undefined => {
    const l = leases.get(name);
    return l && Date.parse(l.expiresAt) > now().getTime() ? l : undefined;
  };
  return {
    get: current,
    /** Takes or renews the lease; refused (conflict) while another holder's lease runs. */
    acquire(name: string, holder: string, ttlSeconds: number): Lease {
      if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > maxTtlSeconds) {
        throw invalid(`lease ttl must be a whole number of seconds 1..${maxTtlSeconds}, got ${ttlSeconds}`);
      }
      const held = current(name);
      if (held && held.holder !== holder) throw conflict(`lease "${name}" is held by ${held.holder} until ${held.expiresAt}`);
      const at = now();
      const lease: Lease = {
        name,
        holder,
        token: held ? held.token : ++tokens,
        acquiredAt: held ? held.acquiredAt : at.toISOString(),
        expiresAt: new Date(at.getTime() + ttlSeconds * 1000).toISOString(),
      };
      leases.set(name, lease);
      return lease;
    },
    /** Frees the lease if this holder has it; freeing a lease one does not hold changes nothing. */
    release(name: string, holder: string): void {
      if (leases.get(name)?.holder === holder) leases.delete(name);
    },
    /** Throws unless `holder` holds the lease now (for writes fenced by a lease). */
    check(name: string, holder: string): void {
      const held = current(name);
      if (held?.holder !== holder) throw conflict(`lease "${name}" is not held by ${holder}${held ? ` (held by ${held.holder})` : ''}`);
    },
  };
}

export type Leases = ReturnType<typeof createLeases>;
