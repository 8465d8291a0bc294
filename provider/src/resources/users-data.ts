/** data "tailplane_users": every user of the tailnet, optionally only the one with a given name. */
import type { DataSource } from '../resource.ts';
import { str } from '../values.ts';

const user = ['object', { id: 'string', name: 'string', display_name: 'string', email: 'string' }] as const;

export function usersDataSource(): DataSource {
  return {
    typeName: 'tailplane_users',
    schema: {
      description: 'The users of the tailnet.',
      attributes: {
        id: { type: 'string', computed: true, description: 'Always "users".' },
        name: { type: 'string', optional: true, description: 'Only the user with this name.' },
        users: { type: ['list', user], computed: true, description: 'The users: { id, name, display_name, email }.' },
      },
    },
    async read(api, config) {
      const name = str(config, 'name');
      const users = (await api.listUsers()).filter((u) => name === null || u.name === name);
      return {
        id: 'users',
        name,
        users: users.map((u) => ({ id: u.id, name: u.name, display_name: u.displayName, email: u.email })),
      };
    },
  };
}
