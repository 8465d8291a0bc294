/** `tailplane routes list`: each routed prefix with its routers, whether each is approved, and which one is primary. */
import type { ApiRoute } from '../../domain/api.ts';
import { render, type Column } from '../output.ts';
import type { Command } from './command.ts';

type Row = { prefix: string; router: ApiRoute['routers'][number]; exitRoute: boolean };

const columns: Column<Row>[] = [
  { header: 'Prefix', value: (r) => r.prefix },
  { header: 'Router', value: (r) => r.router.name },
  { header: 'ID', value: (r) => r.router.nodeId },
  { header: 'Advertised', value: (r) => r.router.advertised },
  { header: 'Approved', value: (r) => r.router.approved },
  // Exit routes are served by every approved exit node; "primary" does not apply.
  { header: 'Primary', value: (r) => (r.exitRoute ? 'exit' : r.router.primary) },
  { header: 'Online', value: (r) => r.router.online },
];

export const routeCommands: Command[] = [
  {
    path: ['routes', 'list'],
    aliases: [['routes', 'ls']],
    summary: 'List routed prefixes with their routers (approved or not) and the primary router',
    async run(ctx) {
      const { routes } = await ctx.client().get<{ routes: ApiRoute[] }>('/api/v1/routes');
      const rows = routes.flatMap((r) => r.routers.map((router) => ({ prefix: r.prefix, router, exitRoute: r.exitRoute })));
      return render(ctx.format, routes, rows, columns);
    },
  },
];
