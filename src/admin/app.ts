/**
 * The admin REST API (fastify): Headscale-compatible /api/v1 routes with JSON-schema validation at the
 * boundary, bearer API keys, readable errors, and its own OpenAPI document at /api/v1/openapi.json.
 */
import Fastify, { LogController, type FastifyError, type FastifyServerFactory } from 'fastify';
import pino from 'pino';
import { StateError } from '../state/errors.ts';
import type { Registrations } from '../state/registrations.ts';
import type { Tailnet } from '../state/tailnet.ts';
import { jsonProblem } from '../guard/json.ts';
import { requireApiKey } from './auth.ts';
import { openApiCollector } from './openapi.ts';
import { idString } from './schemas.ts';
import { batchRoutes } from './routes/batch.ts';
import { keyRoutes } from './routes/keys.ts';
import { leaseRoutes } from './routes/leases.ts';
import { nodeRoutes } from './routes/nodes.ts';
import type { PolicyChecker } from './policy-checker.ts';
import type { CompiledPolicy } from '../policy/index.ts';
import { policyRoutes } from './routes/policy.ts';
import { routeRoutes } from './routes/routes.ts';
import { settingsRoutes } from './routes/settings.ts';
import { sshRoutes } from './routes/ssh.ts';
import { backupRoutes } from './routes/backup.ts';
import { StoreConflictError, StoreUnavailableError } from '../store/errors.ts';
import { userRoutes } from './routes/users.ts';
import { version } from '../version.ts';
import { consolePlugin, consoleSessions } from '../console/plugin.ts';
import { createAuthenticator } from '../auth/principal.ts';
import { oauthClientRoutes } from './routes/oauth-clients.ts';
import { apiV2, v2Prefix } from './v2/index.ts';
import type { OidcConfig } from '../config/config.ts';
import type { RelyingParty } from '../oidc/relying-party.ts';
import { callbackPath, consoleLoginPath, sshCheckPath, escapeHtml, oidcRoutes, sendPage } from '../oidc/routes.ts';
import { auditDoor } from './audit-door.ts';
import { auditRoutes } from './routes/audit.ts';

export interface AdminDeps {
  tailnet: Tailnet;
  registrations: Registrations;
  policy: PolicyChecker;
  /** The live policy as the control plane compiled it; the console's "what can X reach" view reads it. */
  livePolicy: () => CompiledPolicy;
  /** prefix -> node id of its primary subnet router, as the control plane last computed it. */
  primaryRoutes: () => ReadonlyMap<string, number>;
  /** Log level for the structured (pino) log on stderr, or false for none. */
  logLevel: string | false;
  /** The URL clients use as --login-server (the console shows it in `tailscale up` lines). */
  serverUrl: () => string;
  serverFactory?: FastifyServerFactory;
  /** False until every part of the server (store, listeners, STUN, DERP map) is up. */
  ready?: () => boolean;
  /** Failed API-key authentications one source may make per minute. */
  authFailuresPerSourcePerMinute?: number;
  /** Told about every answered request by its route pattern (not the raw URL), for metrics. */
  onResponse?: (r: { method: string; route: string; status: number; seconds: number }) => void;
  /** Writes an online, consistent copy of the database to a new temporary file and returns its path. */
  backup?: () => Promise<string>;
  /** OIDC login, when configured: machine login links go through the identity provider. */
  oidc?: { config: OidcConfig; rp: RelyingParty };
  /** With replicas: this one's id, leadership and change notifications; `ok` false degrades /health. */
  replica?: () => { ok: boolean; [k: string]: unknown };
  /**
   * With replicas: applies what other replicas committed before this request arrived. Behind a load balancer
   * one request may create a user on replica A and the next reach replica B before B's notification did.
   */
  catchUp?: () => void;
}

const statusOf: Record<StateError['kind'], number> = { invalid: 400, unauthorized: 401, not_found: 404, conflict: 409 };

/**
 * stderr, written without blocking: lines logged while a write is in flight queue and go out together. On a
 * pipe process.stderr writes synchronously, one syscall per line, and a line per connection made that 3 % of
 * the server's CPU in a 10,000-node reconnect. pino flushes what is queued when the process exits.
 */
let stderrLog: ReturnType<typeof pino.destination> | undefined;
const logStream = () => (stderrLog ??= pino.destination({ dest: 2, sync: false }));

/** One megabyte: a large policy file fits, a runaway body does not. */
export const bodyLimit = 1024 * 1024;

export function createAdminApp(deps: AdminDeps) {
  const app = Fastify({
    logger: deps.logLevel === false ? false : { level: deps.logLevel, stream: logStream() },
    // Each request's log line is noise at the map-poll rate; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    serverFactory: deps.serverFactory,
    // Unknown fields and wrong types are errors, not silently stripped or coerced.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJsonBody);
  const openapi = openApiCollector(app, { title: 'tailplane admin API', version });
  const onResponse = deps.onResponse;
  if (onResponse) {
    app.addHook('onResponse', async (req, reply) => {
      // Unmatched URLs share one label: raw paths would let any client grow the series without bound.
      const route = req.routeOptions.url ?? 'unmatched';
      onResponse({ method: req.method, route, status: reply.statusCode, seconds: reply.elapsedTime / 1000 });
    });
  }
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof StateError) return reply.code(statusOf[err.kind]).send({ code: statusOf[err.kind], message: err.message });
    // The database is unreachable: nothing was written; the client may retry once the store is back.
    // Another writer (another replica) won a race this request ran; nothing was written.
    if (err instanceof StoreConflictError) return reply.code(409).send({ code: 409, message: `${err.message}: another change won; retry` });
    if (err instanceof StoreUnavailableError) return reply.code(503).header('retry-after', '1').send({ code: 503, message: err.message, error: err.message });
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) req.log.error({ err }, 'admin API error');
    const message = err.validation ? validationMessage(err) : status === 500 ? 'internal error' : err.message;
    return reply.code(status).send({ code: status, message });
  });
  const catchUp = deps.catchUp;
  if (catchUp) {
    // API and console requests see every write acknowledged before them, whichever replica made it (a read of
    // the change log, about one round trip); the control plane's streams follow the bus as before.
    app.addHook('onRequest', async (req) => {
      if (req.url.startsWith('/api/') || req.url.startsWith('/admin')) catchUp();
    });
  }
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ code: 404, message: `no route ${req.method} ${req.url}` }));
  const publicPaths = new Set(['/api/v1/openapi.json', '/health', '/version', '/register/:authId', callbackPath, consoleLoginPath, sshCheckPath]);
  // API v2 authenticates its own way (API key as Basic or Bearer, OAuth tokens with scopes): v1's check skips it.
  app.addHook('onRoute', (route) => void (route.url.startsWith(v2Prefix + '/') && publicPaths.add(route.url)));
  auditDoor(app);
  requireApiKey(app, deps.tailnet, publicPaths, { failuresPerSourcePerMinute: deps.authFailuresPerSourcePerMinute });

  // An unreachable identity provider degrades the server (logins wait) without stopping it.
  const health = () => {
    const oidc = deps.oidc?.rp.status();
    const store = deps.tailnet.healthy();
    const replica = deps.replica?.();
    const ok = store && (oidc === undefined || oidc.state === 'ready') && (replica?.ok ?? true);
    return { status: ok ? 'ok' : 'degraded', store: store ? 'ok' : 'unavailable', ...(oidc ? { oidc } : {}), ...(replica ? { replica } : {}) };
  };
  // Public, for load balancers and probes: each part's state, not the replica's identity, its clients or errors.
  app.get('/health', async (_req, reply) => {
    if (deps.ready && !deps.ready()) return reply.code(503).send({ status: 'starting' });
    const { oidc, replica, ...rest } = health();
    return { ...rest, ...(oidc ? { oidc: { state: oidc.state } } : {}), ...(replica ? { replica: { ok: replica.ok } } : {}) };
  });
  app.get('/version', async () => ({ version }));
  app.get('/api/v1/health', { schema: { summary: 'Health of the server, its database, identity provider and replicas, in detail' } }, async () => ({
    databaseConnectivity: deps.tailnet.healthy(),
    ...health(),
  }));
  userRoutes(app, deps.tailnet);
  keyRoutes(app, deps.tailnet);
  nodeRoutes(app, deps.tailnet, deps.registrations);
  routeRoutes(app, deps.tailnet, deps.primaryRoutes);
  policyRoutes(app, deps.tailnet, deps.policy);
  settingsRoutes(app, deps.tailnet);
  sshRoutes(app, deps.tailnet);
  oauthClientRoutes(app, deps.tailnet);
  apiV2(app, {
    tailnet: deps.tailnet,
    policy: deps.policy,
    auth: createAuthenticator(deps.tailnet),
    authFailuresPerSourcePerMinute: deps.authFailuresPerSourcePerMinute,
  });
  batchRoutes(app, deps.tailnet, deps.policy);
  leaseRoutes(app, deps.tailnet);
  if (deps.backup) backupRoutes(app, deps.backup);
  auditRoutes(app, deps.tailnet);
  app.get('/api/v1/openapi.json', async () => openapi.document());
  const sessions = consoleSessions({});
  app.register(consolePlugin, {
    sessions,
    oidcLogin: deps.oidc !== undefined,
    prefix: '/admin',
    tailnet: deps.tailnet,
    policy: deps.policy,
    livePolicy: deps.livePolicy,
    primaryRoutes: deps.primaryRoutes,
    serverUrl: deps.serverUrl,
  });
  if (deps.oidc) {
    oidcRoutes(app, { tailnet: deps.tailnet, registrations: deps.registrations, serverUrl: deps.serverUrl, consoleSessions: sessions, ...deps.oidc });
  } else {
    app.get<{ Params: { authId: string } }>('/register/:authId', async (req, reply) => {
      const login = deps.registrations.get(req.params.authId);
      if (!login) return sendPage(reply, 404, 'Login not found', 'This login link has expired. Run <code>tailscale up</code> again.');
      const cmd = `tailplane nodes register --user USER --auth-id ${login.authId}`;
      return sendPage(reply, 200, 'Approve this device', `Machine <b>${escapeHtml(login.hostname)}</b> is waiting to join the tailnet.</p><p>An admin approves it with:</p><pre>${escapeHtml(cmd)}</pre><p>`);
    });
  }
  return app;
}

const badRequest = (message: string) => Object.assign(new Error(message), { statusCode: 400 });

/** JSON bodies with a message that says what is wrong: the syntax error, too deep, or a key like "__proto__". */
function parseJsonBody(_req: unknown, body: string | Buffer, done: (err: Error | null, value?: unknown) => void): void {
  const text = body.toString();
  if (text === '') return done(badRequest('request body is empty, but Content-Type says application/json'));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return done(badRequest(`request body is not valid JSON: ${(err as Error).message}`));
  }
  const problem = jsonProblem(value);
  done(problem ? badRequest(`request body ${problem}`) : null, value);
}

/** The schema's words, except where they mean nothing to a user: an id pattern becomes "… must be a number". */
function validationMessage(err: FastifyError): string {
  const first = err.validation?.[0];
  if (first?.keyword === 'pattern' && first.params.pattern === idString.pattern) {
    return `invalid request: ${first.instancePath.split('/').pop() || 'id'} must be a number`;
  }
  return `invalid request: ${err.message}`;
}
