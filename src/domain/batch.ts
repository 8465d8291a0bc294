/**
 * The vocabulary of POST /api/v1/batch: admin writes sent together, applied by the server in one transaction
 * (all or none), each shaped like the single route it stands for; and the leases writers take turns with.
 */
import type { DnsSettings } from './types.ts';

export type BatchOperation =
  | { readonly op: 'user.create'; readonly name: string; readonly displayName?: string; readonly email?: string }
  | { readonly op: 'user.update'; readonly id: string; readonly displayName?: string; readonly email?: string }
  | { readonly op: 'user.delete'; readonly id: string }
  | { readonly op: 'policy.set'; readonly policy: string }
  | { readonly op: 'dns.set'; readonly dns: DnsSettings }
  | { readonly op: 'node.tags'; readonly id: string; readonly tags: readonly string[] }
  | { readonly op: 'node.routes'; readonly id: string; readonly routes: readonly string[] }
  | { readonly op: 'node.rename'; readonly id: string; readonly name: string }
  /** expiry null: the key never expires. */
  | { readonly op: 'node.expiry'; readonly id: string; readonly expiry: string | null }
  /** user is a user *name*, so a key may belong to a user created earlier in the same batch. */
  | {
      readonly op: 'preauthkey.create';
      readonly user?: string;
      readonly tags: readonly string[];
      readonly reusable: boolean;
      readonly ephemeral: boolean;
      readonly expiration: string | null;
    };

export interface BatchRequest {
  readonly operations: readonly BatchOperation[];
  /**
   * Guard, as If-Match on PUT /api/v1/policy: the ETag of the live policy the batch was planned against; the
   * batch is refused with 412 if the policy changed since.
   */
  readonly ifMatch?: string;
  /** Fencing: the batch is refused with 409 unless this holder holds this lease now. */
  readonly lease?: { readonly name: string; readonly holder: string };
  /**
   * The revision of the desired state the batch carries out: a Git commit (40 or 64 hex digits) or
   * `sha256:<64 hex>` of a desired-state file. The batch's audit entries name it, and one `revision.apply`
   * entry records the batch as a whole (what a sync round applied).
   */
  readonly revision?: string;
}

export interface BatchResult {
  /** One entry per operation, in order: the created pre-auth key's id and secret (shown once), else {}. */
  readonly results: readonly ({ readonly id?: string; readonly key?: string })[];
}

/** A named lease (POST /api/v1/lease/:name): who holds it, until when. */
export interface Lease {
  readonly name: string;
  readonly holder: string;
  /** Grows by one each time the lease changes hands (renewals keep it). */
  readonly token: number;
  readonly acquiredAt: string;
  readonly expiresAt: string;
}
