/** /api/v1/routes: every advertised or approved prefix with its routers, and which router is primary. */
import type { FastifyInstance } from 'fastify';
import type { ApiRoute } from '../../domain/api.ts';
import { isExitRoute } from '../../domain/routes.ts';
import type { Node } from '../../domain/types.ts';
import type { Tailnet } from '../../state/tailnet.ts';

/** One entry per prefix, routers by id; exit routes have no primary (every approved exit node serves them). */
export function routeTable(t: Tailnet, primaries: ReadonlyMap<string, number>): ApiRoute[] {
  const byPrefix = new Map<string, Node[]>();
  for (const n of t.nodes.list()) {
    for (const prefix of new Set([...n.availableRoutes, ...n.approvedRoutes])) byPrefix.set(prefix, [...(byPrefix.get(prefix) ?? []), n]);
  }
  return [...byPrefix.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([prefix, nodes]) => ({
      prefix,
      exitRoute: isExitRoute(prefix),
      routers: nodes
        .sort((a, b) => a.id - b.id)
        .map((n) => ({
          nodeId: String(n.id),
          name: n.givenName,
          advertised: n.availableRoutes.includes(prefix),
          approved: n.approvedRoutes.includes(prefix),
          primary: primaries.get(prefix) === n.id,
          online: t.nodes.isOnline(n.id),
        })),
    }));
}

export function routeRoutes(app: FastifyInstance, t: Tailnet, primaries: () => ReadonlyMap<string, number>): void {
  app.get('/api/v1/routes', { schema: { summary: 'List subnet and exit routes with their routers and primaries' } }, async () => ({
    routes: routeTable(t, primaries()),
  }));
}
