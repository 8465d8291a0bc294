/** The derp layer's public surface: the embedded DERP relay, the STUN server, and DERP map helpers. */
export { createDerpServer, type DerpServer, type DerpServerOptions, type DerpStats } from './server.ts';
export { createStunServer, type StunServer, type StunServerOptions } from './stun.ts';
export {
  embeddedDerpMap, loadDerpMap, mergeDerpMaps, validateDerpMap,
  type DerpMap, type DerpNode, type DerpRegion, type EmbeddedDerpMapOptions,
} from './derpmap.ts';
export type { DerpLogger } from './log.ts';
