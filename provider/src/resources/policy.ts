/**
 * tailplane_policy: the tailnet's HuJSON policy (a singleton). The server validates it at plan time, reads
 * report the live text unless it only differs in formatting, and destroy puts back the policy found at create.
 */
import { isDeepStrictEqual } from 'node:util';
import JSON5 from 'json5';
import type { CtyObject } from '../cty.ts';
import { errorDiag, type Diagnostic } from '../diagnostics.ts';
import type { ManagedResource } from '../resource.ts';
import type { Block } from '../schema.ts';
import { ApiError, isStalePolicy, type TailnetApi } from '../tailnet-api.ts';
import { str } from '../values.ts';

/** What "no policy" means: everyone reaches everything. Used on destroy when there was no policy before. */
export const allowAllPolicy = '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}\n';

const schema: Block = {
  description:
    'The tailnet policy (HuJSON). Only one may exist per tailnet. Destroying it restores the policy that was live ' +
    'when it was created (or an allow-all policy if there was none).',
  attributes: {
    id: { type: 'string', computed: true, description: 'Always "policy".' },
    policy: { type: 'string', required: true, description: 'The policy text (HuJSON: JSON with comments and trailing commas).' },
  },
};

/** Same meaning: equal after parsing as HuJSON (comments, whitespace and trailing commas ignored). */
export function samePolicy(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return isDeepStrictEqual(JSON5.parse(a), JSON5.parse(b));
  } catch {
    return false;
  }
}

async function check(api: TailnetApi, text: string): Promise<Diagnostic[]> {
  try {
    await api.checkPolicy(text);
    return [];
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 400) throw err;
    return [errorDiag('Invalid policy', err.message, 'policy')];
  }
}

const state = (text: string): CtyObject => ({ id: 'policy', policy: text });

/**
 * Writes `text` only over the policy Terraform last saw (`expected`; undefined on create): a change made by
 * someone else since the refresh, or between this read and the write (the server's ETag check), is refused
 * rather than overwritten.
 */
async function guardedSet(api: TailnetApi, text: string, expected: string | null | undefined): Promise<string> {
  const live = await api.getPolicyVersion();
  const stale = new Error('the tailnet policy was changed outside Terraform since the last refresh; nothing was overwritten: run terraform apply again to see the change');
  if (expected != null && live.policy !== '' && !samePolicy(expected, live.policy)) throw stale;
  try {
    await api.setPolicy(text, live.etag);
  } catch (err) {
    throw isStalePolicy(err) ? stale : err;
  }
  return live.policy;
}

export function policyResource(): ManagedResource {
  return {
    typeName: 'tailplane_policy',
    schemaVersion: 0,
    schema,
    async validate(config, api) {
      const text = str(config, 'policy');
      return api && text !== null ? check(api, text) : [];
    },
    async plan({ api, prior, planned }) {
      const text = str(planned, 'policy');
      const priorText = prior && str(prior, 'policy');
      // Reformatting or new comments are no change: keep the prior text (allowed for semantically equal values).
      if (text !== null && priorText && samePolicy(priorText, text)) planned.policy = priorText;
      return api && text !== null ? check(api, text) : [];
    },
    async create(api, planned) {
      const previous = await guardedSet(api, str(planned, 'policy')!, undefined);
      return { state: state(str(planned, 'policy')!), private: { previous } };
    },
    async read(api, prior) {
      const live = await api.getPolicy();
      if (live === '') return null;
      const priorText = str(prior, 'policy');
      return state(priorText !== null && samePolicy(priorText, live) ? priorText : live);
    },
    async update(api, prior, planned) {
      await guardedSet(api, str(planned, 'policy')!, str(prior, 'policy'));
      return planned;
    },
    async delete(api, prior, priv) {
      const previous = typeof priv?.previous === 'string' ? priv.previous : '';
      await guardedSet(api, previous !== '' ? previous : allowAllPolicy, str(prior, 'policy'));
    },
    async import(api) {
      return state(await api.getPolicy());
    },
  };
}
