/** data "tailplane_nodes": the registered nodes, optionally only those of one user. */
import type { DataSource } from '../resource.ts';
import { list, str } from '../values.ts';

const node = [
  'object',
  {
    id: 'string',
    hostname: 'string',
    given_name: 'string',
    user: 'string',
    tags: ['list', 'string'],
    ip_addresses: ['list', 'string'],
    approved_routes: ['list', 'string'],
    available_routes: ['list', 'string'],
    online: 'bool',
  },
] as const;

export function nodesDataSource(): DataSource {
  return {
    typeName: 'tailplane_nodes',
    schema: {
      description: 'The registered nodes of the tailnet.',
      attributes: {
        id: { type: 'string', computed: true, description: 'Always "nodes".' },
        user: { type: 'string', optional: true, description: 'Only nodes owned by this user (name).' },
        nodes: { type: ['list', node], computed: true, description: 'The nodes.' },
      },
    },
    async read(api, config) {
      const user = str(config, 'user');
      const nodes = (await api.listNodes()).filter((n) => user === null || n.user?.name === user);
      return {
        id: 'nodes',
        user,
        nodes: nodes.map((n) => ({
          id: n.id,
          hostname: n.name,
          given_name: n.givenName,
          user: n.user?.name ?? '',
          tags: list(n.tags),
          ip_addresses: list(n.ipAddresses),
          approved_routes: list(n.approvedRoutes),
          available_routes: list(n.availableRoutes),
          online: n.online,
        })),
      };
    },
  };
}
