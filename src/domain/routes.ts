/**
 * Route rules every layer shares: the exit routes, canonical route lists, and which routes a node serves
 * (approved and advertised).
 */
import { parseCidr } from '../net/ip.ts';

/** Approving either exit route approves both (as Tailscale and Headscale do). */
export const exitRoutes: readonly string[] = ['0.0.0.0/0', '::/0'];

export const isExitRoute = (prefix: string): boolean => exitRoutes.includes(prefix);

/** Canonical (host bits cleared), sorted, de-duplicated prefixes; throws naming the first invalid one. */
export function normalizeRoutes(routes: readonly string[]): string[] {
  const out = new Set<string>();
  for (const r of routes) {
    const canonical = parseCidr(r)?.text;
    if (canonical === undefined) throw new Error(`invalid route "${r}": expected a CIDR prefix such as 10.0.0.0/24`);
    if (isExitRoute(canonical)) exitRoutes.forEach((e) => out.add(e));
    else out.add(canonical);
  }
  return [...out].sort();
}

/** Routes a node actually serves: approved by an admin or autoApprovers, and advertised by the node. */
export function servingRoutes(n: { approvedRoutes: readonly string[]; availableRoutes: readonly string[] }): string[] {
  return n.approvedRoutes.filter((r) => n.availableRoutes.includes(r));
}
