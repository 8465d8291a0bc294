/**
 * Primary subnet routers: for each approved and advertised prefix, exactly one router is primary — the
 * current one while it stays online, else the online router with the lowest id — so failover happens when
 * the primary goes offline. Exit routes are not primary-routed (every exit node serves them).
 */
import { isExitRoute, servingRoutes } from '../domain/routes.ts';
import type { Node } from '../domain/types.ts';

/** The subnet routes a node serves (exit routes have no primary). */
const subnetRoutes = (n: Node): string[] => servingRoutes(n).filter((r) => !isExitRoute(r));

export function createPrimaryRoutes() {
  /** prefix -> node id of its primary router. */
  let primaries = new Map<string, number>();
  return {
    /** Recomputes the primaries; returns the ids of nodes whose primary routes changed. */
    update(nodes: readonly Node[], isOnline: (id: number) => boolean): Set<number> {
      const candidates = new Map<string, Node[]>();
      for (const n of nodes) for (const r of subnetRoutes(n)) candidates.set(r, [...(candidates.get(r) ?? []), n]);
      const next = new Map<string, number>();
      for (const [prefix, routers] of candidates) {
        const current = primaries.get(prefix);
        const online = routers.filter((n) => isOnline(n.id)).sort((a, b) => a.id - b.id);
        const keep = online.find((n) => n.id === current);
        const pick = keep ?? online[0] ?? routers.find((n) => n.id === current) ?? routers.sort((a, b) => a.id - b.id)[0]!;
        next.set(prefix, pick.id);
      }
      const changed = new Set<number>();
      for (const [prefix, id] of next) if (primaries.get(prefix) !== id) changed.add(id).add(primaries.get(prefix) ?? id);
      for (const [prefix, id] of primaries) if (!next.has(prefix)) changed.add(id);
      primaries = next;
      return changed;
    },
    routesOf(nodeId: number): string[] {
      const out: string[] = [];
      for (const [prefix, id] of primaries) if (id === nodeId) out.push(prefix);
      return out.sort();
    },
    /** prefix -> primary node id, for `routes list`. */
    all: (): ReadonlyMap<string, number> => primaries,
  };
}

export type PrimaryRoutes = ReturnType<typeof createPrimaryRoutes>;
