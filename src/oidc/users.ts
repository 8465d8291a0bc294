/**
 * Who may log in with OIDC and as which tailnet user: the allowed domains, users and groups (a person outside
 * them is refused with the reason), and the user an identity maps to by issuer+subject, created on the first
 * login and given the IdP's current e-mail and display name on every later one.
 */
import type { OidcConfig } from '../config/config.ts';
import type { User } from '../domain/types.ts';
import type { Tailnet } from '../state/tailnet.ts';
import { isIdpPolicyGroup } from '../state/users.ts';
import type { Identity } from './relying-party.ts';

/** Why this identity may not log in, or undefined when it may. */
export function refusal(config: OidcConfig, id: Identity): string | undefined {
  const email = id.email.toLowerCase();
  const domain = email.includes('@') ? email.slice(email.lastIndexOf('@') + 1) : '';
  const needsEmail = config.allowedDomains.length > 0 || config.allowedUsers.length > 0;
  if (needsEmail && email === '') return 'the identity provider did not give an e-mail address, which this server needs to check who may log in';
  if (config.emailVerifiedRequired && email !== '' && !id.emailVerified) {
    return `the e-mail address ${id.email} is not verified at the identity provider`;
  }
  if (config.allowedDomains.length > 0 && !config.allowedDomains.some((d) => d.toLowerCase() === domain)) {
    return `the e-mail domain "${domain}" is not among the domains allowed to log in here`;
  }
  if (config.allowedUsers.length > 0 && !config.allowedUsers.some((u) => u.toLowerCase() === email)) {
    return `${id.email} is not among the users allowed to log in here`;
  }
  if (config.allowedGroups.length > 0 && !id.groups.some((g) => config.allowedGroups.includes(g))) {
    return `you are in none of the groups allowed to log in here (${config.allowedGroups.join(', ')})`;
  }
  return undefined;
}

/**
 * The tailnet user of this identity: found by issuer+subject, else created; e-mail, name and IdP groups kept
 * current (a login that reports other groups changes the user's policy groups, and the audit log says how).
 */
export function userFor(t: Tailnet, config: OidcConfig, id: Identity): User {
  const existing = t.users.byProviderId(id.providerId);
  if (existing) return t.users.update(existing.id, profileOf(config, id));
  return t.users.create({ name: freeName(t, id), providerId: id.providerId, ...profileOf(config, id) });
}

/**
 * What a login says about its user. IdP groups are kept only with `oidc.policy_groups` on (else cleared, so
 * turning it on later never revives stale ones), and only those a policy could name as `group:<name>`.
 */
export function profileOf(config: OidcConfig, id: Identity) {
  const idpGroups = config.policyGroups ? id.groups.filter(isIdpPolicyGroup) : [];
  return { email: id.email, displayName: id.name, idpGroups };
}

/** A readable, unused user name: the e-mail, else the preferred user name, with -2, -3 … when taken. */
function freeName(t: Tailnet, id: Identity): string {
  const candidates = [id.email, id.preferredUsername, id.providerId.slice(id.providerId.lastIndexOf('#') + 1)];
  const base = candidates.map(clean).find((n) => n !== '') ?? 'oidc-user';
  let name = base;
  for (let i = 2; t.users.byName(name); i++) name = `${base.slice(0, 58)}-${i}`;
  return name;
}

/** The characters user names allow, cut to their length limit. */
const clean = (s: string) => s.replace(/[^A-Za-z0-9._@+-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63);
