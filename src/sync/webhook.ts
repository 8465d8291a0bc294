/**
 * Sync notifications: a JSON POST per event (drift, failure, recovery), signed with HMAC-SHA256 over the exact
 * body (`X-Tailplane-Signature: sha256=<hex>`), retried with exponential back-off in the background — a slow or
 * dead receiver never delays a round.
 */
import { createHmac, randomUUID } from 'node:crypto';

export type SyncEventKind = 'drift' | 'failure' | 'recovery';

export interface WebhookOptions {
  readonly url: string;
  /** The shared secret the receiver checks the signature with. */
  readonly secret: string;
  /** Attempts per event (default 5); the wait doubles from `backoffMs` (default 500 ms) between them. */
  readonly attempts?: number;
  readonly backoffMs?: number;
  readonly timeoutMs?: number;
  readonly onError?: (message: string) => void;
}

/** The signature header's value for a body: what a receiver recomputes and compares in constant time. */
export const signBody = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

export function createWebhook(opts: WebhookOptions) {
  const attempts = opts.attempts ?? 5;
  const backoffMs = opts.backoffMs ?? 500;
  const pending = new Set<Promise<void>>();
  let closed = false;

  async function deliver(event: SyncEventKind, body: string, id: string): Promise<void> {
    for (let attempt = 1; attempt <= attempts && !closed; attempt++) {
      try {
        const res = await fetch(opts.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'tailplane-sync',
            'x-tailplane-event': event,
            'x-tailplane-delivery': id,
            'x-tailplane-signature': signBody(opts.secret, body),
          },
          body,
          signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
        });
        await res.arrayBuffer();
        if (res.ok) return;
        if (res.status < 500 && res.status !== 429) return opts.onError?.(`webhook ${event} ${id}: refused with HTTP ${res.status}`);
      } catch (err) {
        if (attempt === attempts) return opts.onError?.(`webhook ${event} ${id}: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, backoffMs * 2 ** (attempt - 1)));
    }
    opts.onError?.(`webhook ${event} ${id}: gave up after ${attempts} attempts`);
  }

  return {
    /** Queues the event and returns at once. */
    send(event: SyncEventKind, payload: Record<string, unknown>): void {
      if (closed) return;
      const id = randomUUID();
      const body = JSON.stringify({ event, id, sentAt: new Date().toISOString(), ...payload });
      const p = deliver(event, body, id).finally(() => pending.delete(p));
      pending.add(p);
    },
    /** Waits (up to `ms`) for deliveries in flight, then stops retrying. */
    async close(ms = 2000): Promise<void> {
      await Promise.race([Promise.allSettled([...pending]), new Promise((r) => setTimeout(r, ms).unref())]);
      closed = true;
    },
  };
}

export type Webhook = ReturnType<typeof createWebhook>;
