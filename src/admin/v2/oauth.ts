/**
 * POST /api/v2/oauth/token: the OAuth 2.0 client credentials grant (RFC 6749 §4.4). The client authenticates
 * with HTTP Basic or with client_id/client_secret in the form; errors carry RFC 6749's `error` and a `message`.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { StateError } from '../../state/errors.ts';
import type { Tailnet } from '../../state/tailnet.ts';
import { tokenLifetimeSeconds } from '../../state/oauth.ts';

type TokenForm = { grant_type?: string; client_id?: string; client_secret?: string; scope?: string };

/** client_id and client_secret from `Authorization: Basic` (form-encoded, RFC 6749 §2.3.1) or the form. */
function clientCredentials(header: string | undefined, form: TokenForm): { id: string; secret: string } | null {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (m) {
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) };
  }
  return form.client_id && form.client_secret ? { id: form.client_id, secret: form.client_secret } : null;
}

const refuse = (reply: FastifyReply, status: number, error: string, message: string) =>
  reply.code(status).send({ error, error_description: message, message });

export function oauthRoutes(app: FastifyInstance, t: Tailnet): void {
  app.post<{ Body: TokenForm | undefined }>('/oauth/token', async (req, reply) => {
    const form = (req.body ?? {}) as TokenForm;
    if (typeof form !== 'object') return refuse(reply, 400, 'invalid_request', 'send an application/x-www-form-urlencoded body');
    if (form.grant_type !== 'client_credentials') {
      return refuse(reply, 400, 'unsupported_grant_type', 'grant_type must be client_credentials');
    }
    const client = clientCredentials(req.headers.authorization, form);
    if (!client) return refuse(reply, 401, 'invalid_client', 'give client_id and client_secret (HTTP Basic or form)');
    const scopes = (form.scope ?? '').split(/\s+/).filter(Boolean);
    try {
      const { token, record } = t.oauthClients.issueToken(client.id, client.secret, scopes);
      return { access_token: token, token_type: 'Bearer', expires_in: tokenLifetimeSeconds, scope: record.scopes.join(' ') };
    } catch (err) {
      if (!(err instanceof StateError)) throw err;
      if (err.kind === 'unauthorized') return refuse(reply, 401, 'invalid_client', err.message);
      return refuse(reply, 400, 'invalid_scope', err.message);
    }
  });
}
