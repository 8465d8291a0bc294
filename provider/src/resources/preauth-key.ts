/** tailplane_preauth_key: a pre-auth key for registering nodes; keys are immutable, so every change replaces one. */
import type { CtyObject } from '../cty.ts';
import { DiagnosticError, errorDiag, type Diagnostic } from '../diagnostics.ts';
import type { ManagedResource } from '../resource.ts';
import type { Block } from '../schema.ts';
import type { ApiPreAuthKey, TailnetApi } from '../tailnet-api.ts';
import { bool, list, sorted, str, strList } from '../values.ts';

const schema: Block = {
  description:
    'A pre-auth key. The secret `key` is known only to the run that creates it (imports show a masked key). ' +
    'An expired or revoked key reads as gone, so the next apply creates a new one; a used one-time key is kept.',
  attributes: {
    id: { type: 'string', computed: true, description: 'The key id.' },
    user: { type: 'string', optional: true, forceNew: true, description: 'Owner (user id or name); nodes registered with the key belong to this user.' },
    reusable: { type: 'bool', optional: true, computed: true, default: false, forceNew: true, description: 'Whether the key can register more than one node.' },
    ephemeral: { type: 'bool', optional: true, computed: true, default: false, forceNew: true, description: 'Whether nodes registered with it are ephemeral.' },
    expiration: { type: 'string', optional: true, forceNew: true, description: 'Expiry time (RFC 3339); null means never.' },
    tags: { type: ['set', 'string'], optional: true, computed: true, default: [], forceNew: true, description: 'ACL tags given to nodes registered with the key.' },
    key: { type: 'string', computed: true, sensitive: true, description: 'The secret key.' },
  },
};

/** The live key as state; the secret and the spelling of `user` and `expiration` come from the prior state. */
function toState(k: ApiPreAuthKey, prior: CtyObject | null): CtyObject {
  const priorUser = prior ? str(prior, 'user') : null;
  // A key's owner never changes, so the prior spelling (a name or an id, as the configuration wrote it) holds
  // even across a rename by hand; reading back the id instead made the next plan replace the key. Without a
  // prior (an import), the name: the form configurations use.
  const user = k.user === null ? null : (priorUser ?? k.user.name);
  const priorExp = prior ? str(prior, 'expiration') : null;
  const sameExp = priorExp !== null && k.expiration !== null && Date.parse(priorExp) === Date.parse(k.expiration);
  return {
    id: k.id,
    user,
    reusable: k.reusable,
    ephemeral: k.ephemeral,
    expiration: sameExp ? priorExp : k.expiration,
    tags: list(sorted(k.aclTags)),
    key: (prior && str(prior, 'key')) ?? k.key,
  };
}

async function userId(api: TailnetApi, ref: string | null): Promise<string | null> {
  if (ref === null || /^\d+$/.test(ref)) return ref;
  const u = (await api.listUsers()).find((x) => x.name === ref);
  if (!u) throw new DiagnosticError('Unknown user', `no user named "${ref}"`, 'user');
  return u.id;
}

const isLive = (k: ApiPreAuthKey) => k.expiration === null || Date.parse(k.expiration) > Date.now();

export function preAuthKeyResource(): ManagedResource {
  return {
    typeName: 'tailplane_preauth_key',
    schemaVersion: 0,
    schema,
    async validate(config) {
      const diags: Diagnostic[] = [];
      const exp = str(config, 'expiration');
      if (exp !== null && Number.isNaN(Date.parse(exp))) diags.push(errorDiag('Invalid expiration', `"${exp}" is not an RFC 3339 time`, 'expiration'));
      return diags;
    },
    async create(api, planned) {
      const k = await api.createPreAuthKey({
        user: await userId(api, str(planned, 'user')),
        reusable: bool(planned, 'reusable') ?? false,
        ephemeral: bool(planned, 'ephemeral') ?? false,
        expiration: str(planned, 'expiration'),
        tags: strList(planned, 'tags') ?? [],
      });
      return { state: toState(k, { user: str(planned, 'user'), expiration: str(planned, 'expiration') }) };
    },
    async read(api, state) {
      const k = (await api.listPreAuthKeys()).find((x) => x.id === str(state, 'id'));
      return k && isLive(k) ? toState(k, state) : null;
    },
    // Every argument forces replacement, so an update only ever carries computed values forward.
    async update(_api, _prior, planned) {
      return planned;
    },
    async delete(api, prior) {
      await api.deletePreAuthKey(str(prior, 'id')!);
    },
    async import(api, id) {
      const k = (await api.listPreAuthKeys()).find((x) => x.id === id);
      if (!k) throw new DiagnosticError('Cannot import pre-auth key', `no pre-auth key with id "${id}"`);
      return toState(k, null);
    },
  };
}
