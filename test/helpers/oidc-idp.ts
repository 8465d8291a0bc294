/**
 * A real OpenID Connect provider for tests (the `oidc-provider` package) on a loopback port, with test accounts
 * whose claims a test may change between logins, and a browser-like HTTP client that follows a login URL through
 * the provider's login form (cookies kept, redirects followed) to wherever it ends.
 */
import Provider from 'oidc-provider';
import http from 'node:http';

export interface TestAccount {
  email: string;
  email_verified?: boolean;
  name?: string;
  preferred_username?: string;
  groups?: string[];
}

export interface TestIdp {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Accounts by login name (the sub); change one to change what the next login reports. */
  readonly accounts: Map<string, TestAccount>;
  close(): Promise<void>;
}

/** Starts the provider on `port` with one confidential client whose redirect URI is `redirectUri`. */
export async function startTestIdp(opts: { port: number; redirectUri: string; accounts: Record<string, TestAccount> }): Promise<TestIdp> {
  const issuer = `http://127.0.0.1:${opts.port}`;
  const accounts = new Map(Object.entries(opts.accounts));
  const clientId = 'tailplane';
  const clientSecret = 'test-client-secret-0123456789abcdef';
  const provider = new Provider(issuer, {
    clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: [opts.redirectUri], grant_types: ['authorization_code'], response_types: ['code'] }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'], groups: ['groups'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    cookies: { keys: ['test-cookie-key'] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx: unknown, sub: string) {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...account }) };
    },
    // Consent granted up front: the tests are about the relying party, not the IdP's consent screen.
    async loadExistingGrant(ctx: any) {
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid email profile groups');
      await grant.save();
      return grant;
    },
  } as any);
  const server = http.createServer(provider.callback());
  await new Promise<void>((res) => server.listen(opts.port, '127.0.0.1', res));
  return {
    issuer,
    clientId,
    clientSecret,
    accounts,
    close: () => new Promise<void>((res) => (server.closeAllConnections(), server.close(() => res()))),
  };
}

export interface BrowseResult {
  status: number;
  url: string;
  text: string;
  /** Every URL visited, in order. */
  visited: string[];
}

/**
 * Follows `url` like a browser: redirects, cookies (one jar, as a browser keeps them per host), and the IdP's
 * login form, filled with `login`. `stopAt` ends the walk before requesting a matching URL (to tamper with it);
 * `rewrite` changes each URL before it is requested (an attacker in the middle of the walk).
 */
export async function browse(
  url: string,
  login: string,
  opts: { jar?: Map<string, string>; stopAt?: (url: string) => boolean; rewrite?: (url: URL) => void } = {},
): Promise<BrowseResult> {
  const jar = opts.jar ?? new Map<string, string>();
  const visited: string[] = [];
  let request: { url: string; method: string; body?: string } = { url, method: 'GET' };
  for (let hop = 0; hop < 20; hop++) {
    if (opts.rewrite) {
      const u = new URL(request.url);
      opts.rewrite(u);
      request.url = u.href;
    }
    if (opts.stopAt?.(request.url)) return { status: 0, url: request.url, text: '', visited };
    visited.push(request.url);
    const res = await fetch(request.url, {
      method: request.method,
      redirect: 'manual',
      headers: {
        cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(request.body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: request.body,
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      jar.set(pair!.slice(0, i).trim(), pair!.slice(i + 1).trim());
    }
    const text = await res.text();
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      request = { url: new URL(location, request.url).href, method: 'GET' };
      continue;
    }
    const form = /<form[^>]*action="([^"]+)"[^>]*method="post"/i.exec(text);
    if (!form || new URL(request.url).origin === new URL(url).origin) return { status: res.status, url: request.url, text, visited };
    const fields = new URLSearchParams();
    for (const m of text.matchAll(/<input[^>]*name="([^"]+)"[^>]*>/g)) {
      const name = m[1]!;
      const value = /value="([^"]*)"/.exec(m[0])?.[1] ?? '';
      fields.set(name, name === 'login' ? login : name === 'password' ? 'any-password' : value);
    }
    request = { url: new URL(form[1]!.replaceAll('&amp;', '&'), request.url).href, method: 'POST', body: fields.toString() };
  }
  throw new Error(`too many redirects from ${url}: ${visited.join(' -> ')}`);
}
