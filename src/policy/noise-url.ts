/** URLs in a node's netmap that the node fetches back from the control server over Noise. */

/**
 * The base of URLs a node fetches over Noise, such as the hold-and-delegate URL. The client's Noise transport
 * dials the control server itself only for https URLs (its TLS dial hook is the Noise dial; an http URL would be
 * dialled in the clear, as h2c, to the host it names), so these are https whatever the server URL's scheme.
 */
export function noiseUrlBase(serverUrl: string | undefined): string {
  return serverUrl ? `https://${new URL(serverUrl).host}` : '';
}
