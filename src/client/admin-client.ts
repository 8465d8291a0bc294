/**
 * A typed client for tailplane's admin REST API on undici: one keep-alive pool per server, timeouts,
 * retries with backoff for idempotent calls only, and errors that carry the server's message.
 */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Pool, errors as undiciErrors } from 'undici';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  url: string;
  apiKey: string;
  timeoutMs?: number;
  /** Attempts for idempotent calls (GET, PUT, DELETE) when the connection fails or the server answers 5xx. */
  retries?: number;
  /** Which tool this is (cli, engine, terraform, sync), sent as X-Tailplane-Door for the audit log. */
  door?: string;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
const idempotent = new Set<Method>(['GET', 'PUT', 'DELETE']);

export function createAdminClient(opts: ClientOptions) {
  const base = new URL(opts.url);
  const pool = new Pool(base.origin, { connections: 8, keepAliveTimeout: 30_000 });
  const timeout = opts.timeoutMs ?? 30_000;
  const retries = opts.retries ?? 3;

  async function once<T>(method: Method, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await pool.request({
      method,
      path,
      headers: {
        authorization: `Bearer ${opts.apiKey}`,
        ...(opts.door ? { 'x-tailplane-door': opts.door } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { message: text };
    }
    if (res.statusCode >= 400) {
      const message = (parsed as { message?: string }).message ?? `HTTP ${res.statusCode}`;
      throw new ApiError(res.statusCode, message);
    }
    return parsed as T;
  }

  async function call<T>(method: Method, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await once<T>(method, path, body, headers);
      } catch (err) {
        const transient = err instanceof ApiError ? err.status >= 500 : isConnectionError(err);
        if (!transient || !idempotent.has(method) || attempt >= retries) throw describe(err, base.origin);
        await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 1)));
      }
    }
  }

  /** POSTs and streams the answer's body into a new file (mode 0600); never retried. */
  async function download(path: string, file: string): Promise<void> {
    try {
      const res = await pool.request({ method: 'POST', path, headers: { authorization: `Bearer ${opts.apiKey}` }, headersTimeout: timeout, bodyTimeout: timeout });
      if (res.statusCode >= 400) {
        const text = await res.body.text();
        let message = `HTTP ${res.statusCode}`;
        try {
          message = (JSON.parse(text) as { message?: string }).message ?? message;
        } catch {
          // Not JSON: keep the status.
        }
        throw new ApiError(res.statusCode, message);
      }
      await pipeline(res.body, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    } catch (err) {
      throw describe(err, base.origin);
    }
  }

  return {
    download,
    get: <T>(path: string) => call<T>('GET', path),
    post: <T>(path: string, body: unknown = {}) => call<T>('POST', path, body),
    /** `headers` e.g. `{ 'if-match': etag }` for a write that must not overwrite an unseen change. */
    put: <T>(path: string, body: unknown, headers?: Record<string, string>) => call<T>('PUT', path, body, headers),
    delete: <T>(path: string) => call<T>('DELETE', path),
    close: () => pool.close(),
  };
}

export type AdminClient = ReturnType<typeof createAdminClient>;

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return (
    err instanceof undiciErrors.SocketError ||
    err instanceof undiciErrors.HeadersTimeoutError ||
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_CONNECT_TIMEOUT'].includes(code)
  );
}

function describe(err: unknown, origin: string): Error {
  if (err instanceof ApiError) return err;
  if (isConnectionError(err)) return new ApiError(0, `cannot reach the tailplane server at ${origin}: ${(err as Error).message}`);
  return err as Error;
}
