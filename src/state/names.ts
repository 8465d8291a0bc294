/**
 * Node names as Tailscale makes them: a DNS label from the client's hostname, made unique in the tailnet
 * with a numeric suffix ("laptop", "laptop-1", …).
 */

const maxLabel = 63;

/** Lower-cases and replaces anything outside [a-z0-9-] with '-', trimming dashes; never empty. */
export function sanitizeHostname(hostname: string): string {
  const label = hostname
    .toLowerCase()
    .split('.')[0]!
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, maxLabel)
    .replace(/-+$/g, '');
  return label || 'node';
}

/** True when `name` is a valid DNS label that an admin may give a node. */
export function isValidGivenName(name: string): boolean {
  return name.length <= maxLabel && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name);
}

/** The first of base, base-1, base-2, … that `taken` does not hold. */
export function uniqueName(base: string, taken: (name: string) => boolean): string {
  if (!taken(base)) return base;
  for (let i = 1; ; i++) {
    const suffix = `-${i}`;
    const candidate = base.slice(0, maxLabel - suffix.length) + suffix;
    if (!taken(candidate)) return candidate;
  }
}
