/** Building blocks the API v2 routes share: errors in Tailscale's shape, the tailnet and device parameters. */
import type { Node } from '../../domain/types.ts';
import { notFound } from '../../state/errors.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { strict } from '../schemas.ts';

/** A 4xx with a message for people; the error handler sends it as `{"message": …}`. */
export const httpError = (statusCode: number, message: string) => Object.assign(new Error(message), { statusCode });

/** Path parameters of /tailnet/{tailnet}/… routes: only "-" (the caller's tailnet) exists, checked on request. */
export const tailnetParams = strict({ tailnet: { type: 'string' } }, ['tailnet']);

/** Path parameters of /device/{id}/… routes; the id is checked by lookup, so a bad one is a 404. */
export const deviceParams = strict({ id: { type: 'string' } }, ['id']);

/** The node behind a device id (numeric; Tailscale's clients also send it as the "nodeId"). */
export function deviceOf(t: Tailnet, id: string): Node {
  if (!/^[0-9]{1,15}$/.test(id)) throw notFound(`device "${id}" not found`);
  return t.nodes.get(Number(id));
}
