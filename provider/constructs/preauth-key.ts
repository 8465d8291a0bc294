/** Pre-auth keys (tailplane_preauth_key) for enrolling machines without an interactive login. */
import { Construct } from 'constructs';
import * as tf from '../bindings/index.ts';
import { User } from './principals.ts';
import type { TagRef, UserRef } from './refs.ts';
import { tailnetOf, validateRefs } from './scope.ts';

export interface PreAuthKeyProps {
  /** Owner of the machines it enrolls; leave out for a tags-only key. */
  readonly user?: UserRef;
  /** Tags the enrolled machines get (then they are owned by the tags). */
  readonly tags?: TagRef[];
  readonly reusable?: boolean;
  readonly ephemeral?: boolean;
  /** Absolute expiry (RFC 3339 or a Date): a relative one would change at every synth and replace the key. */
  readonly expiration?: string | Date;
}

/** A pre-auth key; `key` is its secret, as a (sensitive) Terraform reference. */
export class PreAuthKey extends Construct {
  readonly resource: tf.PreauthKey;

  constructor(scope: Construct, id: string, props: PreAuthKeyProps) {
    super(scope, id);
    const tailnet = tailnetOf(this);
    const user = props.user instanceof User ? props.user.resource.name : props.user?.alias.replace(/@$/, '');
    const expiration = props.expiration instanceof Date ? props.expiration.toISOString() : props.expiration;
    this.resource = new tf.PreauthKey(this, 'resource', {
      user,
      tags: props.tags?.map((t) => t.alias),
      reusable: props.reusable,
      ephemeral: props.ephemeral,
      expiration,
      provider: tailnet.provider,
      // Tagged keys need their tags in tagOwners first.
      dependsOn: props.tags?.length ? [tailnet.policyResource] : undefined,
    });
    validateRefs(this, tailnet, () => [...(props.tags ?? []), ...(props.user ? [props.user] : [])]);
    this.node.addValidation({ validate: () => (props.user || props.tags?.length ? [] : ['a pre-auth key needs a user or tags']) });
  }

  /** The secret key, e.g. for `tailscale up --auth-key`. */
  get key(): string {
    return this.resource.key;
  }
}
