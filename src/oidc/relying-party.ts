/**
 * The OpenID Connect relying party (openid-client): discovers the issuer with retries and back-off (an
 * unreachable IdP at start is reported on /health, not a crash), starts logins with state, nonce and PKCE S256,
 * and finishes them once: a tampered or replayed state, a wrong nonce or a bad ID token are refused.
 */
import * as oidc from 'openid-client';
import type { OidcConfig } from '../config/config.ts';

/** What a login was started for; the callback picks up where it left off. */
export type Purpose = { kind: 'register'; authId: string } | { kind: 'console'; next: string } | { kind: 'ssh'; checkId: string };

export interface Identity {
  /** iss and sub: the stable key of the person at the IdP. */
  providerId: string;
  email: string;
  emailVerified: boolean;
  name: string;
  preferredUsername: string;
  groups: string[];
  /** The ID token's exp, in ms since the epoch. */
  expiresAt: number;
}

export type OidcStatus = { state: 'discovering' | 'ready' } | { state: 'unreachable'; error: string; retryInMs: number };

interface Flow {
  purpose: Purpose;
  nonce: string;
  verifier?: string;
  createdAt: number;
}

/** A login that did not finish: a clear message for the person, never a token or secret. */
export class OidcLoginError extends Error {}

const flowTtlMs = 10 * 60_000;

export interface RelyingPartyOptions {
  config: OidcConfig;
  /** Where the IdP sends the browser back (server_url + /oidc/callback). */
  redirectUri: () => string;
  log: { info(msg: string): void; warn(obj: object, msg?: string): void };
  /** First retry delay after a failed discovery; doubles up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
  now?: () => number;
}

export function createRelyingParty(opts: RelyingPartyOptions) {
  const now = opts.now ?? Date.now;
  const { config } = opts;
  const flows = new Map<string, Flow>();
  let client: oidc.Configuration | undefined;
  let status: OidcStatus = { state: 'discovering' };
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const discover = async (delay: number) => {
    try {
      const issuer = new URL(config.issuer);
      const loopback = issuer.protocol === 'http:';
      client = await oidc.discovery(issuer, config.clientId, undefined, oidc.ClientSecretPost(config.clientSecret), {
        // Plain http is only for an IdP on loopback (tests, a local Keycloak); production issuers are https.
        execute: loopback ? [oidc.allowInsecureRequests] : [],
        timeout: 10,
      });
      status = { state: 'ready' };
      opts.log.info(`oidc: issuer ${config.issuer} discovered`);
    } catch (err) {
      if (stopped) return;
      const error = `${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}`;
      status = { state: 'unreachable', error, retryInMs: delay };
      opts.log.warn({ issuer: config.issuer, error, retryInMs: delay }, 'oidc: issuer unreachable, retrying');
      timer = setTimeout(() => void discover(Math.min(delay * 2, opts.maxRetryMs ?? 60_000)), delay);
      timer.unref();
    }
  };
  // Started on the next tick, so the caller has finished wiring its logger before the first report.
  const ready = Promise.resolve().then(() => discover(opts.retryMs ?? 1000));

  const sweep = () => {
    for (const [state, f] of flows) if (now() - f.createdAt > flowTtlMs) flows.delete(state);
  };

  return {
    /** Settles after the first discovery attempt (tests wait on it). */
    ready,
    status: (): OidcStatus => status,
    /** The IdP URL to send the browser to for this purpose. */
    async begin(purpose: Purpose): Promise<string> {
      if (!client) throw new OidcLoginError(`the identity provider ${config.issuer} is not reachable right now; try again in a minute`);
      sweep();
      const state = oidc.randomState();
      const flow: Flow = { purpose, nonce: oidc.randomNonce(), createdAt: now() };
      const params: Record<string, string> = {
        ...config.extraParams,
        redirect_uri: opts.redirectUri(),
        scope: config.scopes.join(' '),
        state,
        nonce: flow.nonce,
      };
      if (config.pkce) {
        flow.verifier = oidc.randomPKCECodeVerifier();
        params.code_challenge = await oidc.calculatePKCECodeChallenge(flow.verifier);
        params.code_challenge_method = 'S256';
      }
      flows.set(state, flow);
      return oidc.buildAuthorizationUrl(client, params).href;
    },
    /**
     * Finishes a login from the callback URL: the state must be one we issued and not yet used (so a replayed
     * callback fails here), then openid-client exchanges the code and checks the ID token and nonce.
     */
    async finish(callbackUrl: URL): Promise<{ purpose: Purpose; identity: Identity }> {
      const state = callbackUrl.searchParams.get('state') ?? '';
      const flow = flows.get(state);
      flows.delete(state);
      if (!flow || now() - flow.createdAt > flowTtlMs) {
        throw new OidcLoginError('this login link is unknown, already used or expired: start the login again');
      }
      const idpError = callbackUrl.searchParams.get('error');
      if (idpError) {
        throw new OidcLoginError(`the identity provider refused the login: ${idpError} ${callbackUrl.searchParams.get('error_description') ?? ''}`.trim());
      }
      if (!client) throw new OidcLoginError(`the identity provider ${config.issuer} is not reachable right now`);
      try {
        const tokens = await oidc.authorizationCodeGrant(client, callbackUrl, {
          expectedState: state,
          expectedNonce: flow.nonce,
          pkceCodeVerifier: flow.verifier,
          idTokenExpected: true,
        });
        const claims = tokens.claims()!;
        // Many IdPs put profile, e-mail and groups in the userinfo response rather than the ID token.
        const info = tokens.access_token ? await oidc.fetchUserInfo(client, tokens.access_token, claims.sub) : {};
        const all: Record<string, unknown> = { ...info, ...claims };
        return { purpose: flow.purpose, identity: identityOf(all, config.groupsClaim) };
      } catch (err) {
        throw new OidcLoginError(`the login could not be verified: ${whyUnverified(err)}`);
      }
    },
    stop(): void {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

export type RelyingParty = ReturnType<typeof createRelyingParty>;

function identityOf(c: Record<string, unknown>, groupsClaim: string): Identity {
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const rawGroups = c[groupsClaim];
  const groups = Array.isArray(rawGroups) ? rawGroups.filter((g): g is string => typeof g === 'string') : typeof rawGroups === 'string' ? [rawGroups] : [];
  return {
    providerId: `${str(c.iss)}#${str(c.sub)}`,
    email: str(c.email),
    emailVerified: c.email_verified === true,
    name: str(c.name),
    preferredUsername: str(c.preferred_username),
    groups,
    expiresAt: typeof c.exp === 'number' ? c.exp * 1000 : 0,
  };
}

/**
 * What went wrong in a code exchange, in words a person can pass on: the IdP's own error for a refused code,
 * the claim that did not match for a forged response (never the values, which are secrets).
 * openid-client wraps the precise error of oauth4webapi, which names the claim, in a generic one.
 */
function whyUnverified(err: unknown): string {
  type Cause = Error & { error?: unknown; error_description?: unknown; cause?: unknown };
  const chain: Cause[] = [];
  for (let c = err; c instanceof Error && chain.length < 5; c = (c as Cause).cause) chain.push(c as Cause);
  const refused = chain.find((c) => typeof c.error === 'string');
  if (refused) return `the identity provider refused the code: ${refused.error}${refused.error_description ? ` (${refused.error_description})` : ''}`;
  // The innermost Error is the precise one (e.g. unexpected "iss" (issuer) response parameter value); for an ID
  // token claim its cause (a plain object) names the claim.
  const inner = chain.at(-1)!;
  const detail = (inner.cause ?? {}) as { claim?: unknown };
  if (typeof detail.claim === 'string') return `the ID token's "${detail.claim}" claim does not match this login`;
  return inner.message;
}
