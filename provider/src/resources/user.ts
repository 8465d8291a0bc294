/** tailplane_user: a tailnet user; every change (name, display name, e-mail) is made in place, keeping its id. */
import type { CtyObject } from '../cty.ts';
import { DiagnosticError } from '../diagnostics.ts';
import type { ManagedResource } from '../resource.ts';
import type { Block } from '../schema.ts';
import type { ApiUser, TailnetApi } from '../tailnet-api.ts';
import { str } from '../values.ts';

const schema: Block = {
  description: 'A user of the tailnet. Changes are made in place: the user keeps its id and its nodes.',
  attributes: {
    id: { type: 'string', computed: true, description: 'The user id.' },
    name: { type: 'string', required: true, description: 'Unique login name, e.g. "alice" or "alice@example.com".' },
    display_name: { type: 'string', optional: true, computed: true, default: '', description: 'Name shown to people.' },
    email: { type: 'string', optional: true, computed: true, default: '', description: 'E-mail address.' },
    created_at: { type: 'string', computed: true, description: 'Creation time (RFC 3339).' },
  },
};

const toState = (u: ApiUser): CtyObject => ({
  id: u.id,
  name: u.name,
  display_name: u.displayName,
  email: u.email,
  created_at: u.createdAt,
});

async function find(api: TailnetApi, ref: string): Promise<ApiUser | undefined> {
  const users = await api.listUsers();
  return users.find((u) => u.id === ref) ?? users.find((u) => u.name === ref);
}

export function userResource(): ManagedResource {
  return {
    typeName: 'tailplane_user',
    schemaVersion: 0,
    schema,
    async create(api, planned) {
      const u = await api.createUser({
        name: str(planned, 'name')!,
        displayName: str(planned, 'display_name') ?? '',
        email: str(planned, 'email') ?? '',
      });
      return { state: toState(u) };
    },
    async read(api, state) {
      const u = await find(api, str(state, 'id') ?? '');
      return u ? toState(u) : null;
    },
    async update(api, prior, planned) {
      const id = str(prior, 'id')!;
      const name = str(planned, 'name')!;
      let user = name !== str(prior, 'name') ? await api.renameUser(id, name) : undefined;
      const profile = { displayName: str(planned, 'display_name') ?? '', email: str(planned, 'email') ?? '' };
      if (profile.displayName !== str(prior, 'display_name') || profile.email !== str(prior, 'email')) {
        user = await api.updateUser(id, profile);
      }
      return user ? toState(user) : planned;
    },
    async delete(api, prior) {
      await api.deleteUser(str(prior, 'id')!);
    },
    async import(api, id) {
      const u = await find(api, id);
      if (!u) throw new DiagnosticError('Cannot import user', `no user with id or name "${id}"`);
      return toState(u);
    },
  };
}
