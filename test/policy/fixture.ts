// Shared test fixture: a small tailnet (two users, tagged servers, a subnet router that is also an exit node).
import type { Topology } from '../../src/policy/index.ts';

const node = (id: number, name: string, owner: { user?: string; tags?: string[] }, routes: string[] = []) => ({
  id, name, user: owner.user, tags: owner.tags ?? [], ipv4: `100.64.0.${id}`, ipv6: `fd7a:115c:a1e0::${id}`, approvedRoutes: routes,
});

export const topology: Topology = {
  users: [
    { id: 1, name: 'alice', email: 'alice@example.com' },
    { id: 2, name: 'bob', email: 'bob@example.com' },
  ],
  nodes: [
    node(1, 'alice-laptop', { user: 'alice' }),
    node(2, 'alice-phone', { user: 'alice' }),
    node(3, 'bob-laptop', { user: 'bob' }),
    node(4, 'web', { tags: ['tag:server'] }),
    node(5, 'router', { tags: ['tag:router'] }, ['10.20.0.0/16', '0.0.0.0/0', '::/0']),
    node(6, 'ci', { tags: ['tag:ci'] }),
  ],
};

export const header = `
  "groups": { "group:admins": ["alice@"], "group:devs": ["bob@example.com"] },
  "hosts": { "db-subnet": "10.20.0.0/16", "printer": "10.20.0.9" },
  "tagOwners": { "tag:server": ["group:admins"], "tag:router": ["group:admins"], "tag:ci": ["tag:server"] },
`;

/** Wraps sections in a policy object with the standard groups, hosts and tagOwners. */
export const policyText = (sections: string) => `{${header}${sections}}`;
