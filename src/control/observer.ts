/**
 * What the control plane reports about its own work (map responses, fan-out, registrations), so an
 * observer such as the metrics registry can count it without the control layer knowing how it is counted.
 */

/** A full map opens a stream (or answers a one-shot fetch); deltas follow; keep-alives hold the stream open. */
export type MapResponseKind = 'full' | 'delta' | 'keepalive';

/** How a node got registered. */
export type RegistrationMethod = 'authkey' | 'interactive' | 'key_rotation';

export interface ControlObserver {
  mapResponse(kind: MapResponseKind): void;
  /** Seconds from the first change of a flushed batch to the last stream written with it. */
  fanout(seconds: number): void;
  registered(method: RegistrationMethod): void;
  /** A refused registration; `reason` is a small fixed vocabulary (a state error kind, "malformed"). */
  registrationFailed(reason: string): void;
}

/** The observer when nobody listens. */
export const silentObserver: ControlObserver = {
  mapResponse() {},
  fanout() {},
  registered() {},
  registrationFailed() {},
};
