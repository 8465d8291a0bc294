/**
 * Noise handshakes on worker threads. A handshake is a fifth of what a connecting client costs the event loop
 * (four X25519, a key pair, BLAKE2s and ChaCha20-Poly1305 over 101 bytes, ~0.4 ms), and it is pure computation
 * on bytes, so it moves off the thread that holds the tailnet: after a restart, 10,000 clients reconnect at once.
 *
 * Handing one over costs the event loop a tenth of running it, so the pool takes bursts: connections arrive
 * dozens per tick after a restart, and a queue of 4 per worker had most of them run here anyway. The event loop
 * still runs a handshake itself when no worker is ready yet (they compile their TypeScript first), when every
 * worker already has `maxQueued` waiting, or after a worker died: a broken pool costs only speed.
 *
 * The server starts its workers at the first burst of handshakes (`startAtPerSecond`), not with itself: a worker
 * costs ~0.2 s of CPU and ~20 MiB to start, which a tailnet whose clients connect a few at a time never earns back.
 */
import { Worker } from 'node:worker_threads';
import { HandshakeError, respond, type HandshakeResult } from './handshake.ts';
import type { KeyPair } from './primitives.ts';

export interface HandshakePool {
  /** The responder handshake: its result now when run on this thread, a promise of it when a worker runs it. */
  respond(init: Buffer): HandshakeResult | Promise<HandshakeResult>;
  /** Handshakes a worker ran. */
  readonly offloaded: number;
  /** Resolves once every started worker is ready (or has failed). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

export interface HandshakePoolOptions {
  /** Worker threads; 0 runs every handshake on the calling thread. */
  readonly workers: number;
  /** Handshakes one worker may have waiting before the next runs here instead; defaults to 256 (~0.1 s of work). */
  readonly maxQueued?: number;
  /** Workers start once this many handshakes arrive within a second (0, the default: with the pool). */
  readonly startAtPerSecond?: number;
  /** Told once when a worker fails; its handshakes in flight fail, and later ones run here. */
  readonly onWorkerError?: (err: Error) => void;
}

/** A request to a worker and its answer (the worker's side is handshake-worker.ts). */
export interface HandshakeRequest {
  readonly id: number;
  readonly init: Uint8Array;
}
export type HandshakeReply =
  | { readonly id: number; readonly result: HandshakeResult }
  | { readonly id: number; readonly error: string; readonly handshakeError: boolean };

interface PoolWorker {
  readonly worker: Worker;
  /** Settles when the worker is ready or has failed. */
  readonly started: Promise<void>;
  ready: boolean;
  dead: boolean;
  readonly waiting: Map<number, { resolve: (r: HandshakeResult) => void; reject: (e: Error) => void }>;
}

export function createHandshakePool(keyPair: KeyPair, options: HandshakePoolOptions): HandshakePool {
  const maxQueued = options.maxQueued ?? 256;
  let closing = false;
  // A worker that stops because the pool closes has not failed.
  const onError = (err: Error) => closing || options.onWorkerError?.(err);
  const workers: PoolWorker[] = [];
  const startWorkers = () => {
    if (workers.length > 0 || closing) return;
    for (let i = 0; i < options.workers; i++) workers.push(startWorker(keyPair, onError));
  };
  const startAt = options.startAtPerSecond ?? 0;
  if (startAt === 0) startWorkers();
  let second = 0;
  let inSecond = 0;
  /** Counts a handshake run here before the workers started: a burst of them starts the workers. */
  const countBurst = () => {
    const now = performance.now();
    if (now - second >= 1000) [second, inSecond] = [now, 0];
    if (++inSecond >= startAt) startWorkers();
  };
  let nextId = 1;
  let offloaded = 0;

  /** The live, ready worker with the fewest handshakes waiting, if it has room for one more. */
  const pick = (): PoolWorker | undefined => {
    let best: PoolWorker | undefined;
    for (const w of workers) if (w.ready && !w.dead && (!best || w.waiting.size < best.waiting.size)) best = w;
    return best && best.waiting.size < maxQueued ? best : undefined;
  };

  return {
    respond(init) {
      const w = pick();
      if (!w) {
        if (workers.length === 0) countBurst();
        return respond(init, keyPair);
      }
      const id = nextId++;
      offloaded++;
      return new Promise<HandshakeResult>((resolve, reject) => {
        w.waiting.set(id, { resolve, reject });
        w.worker.postMessage({ id, init } satisfies HandshakeRequest);
      });
    },
    get offloaded() {
      return offloaded;
    },
    ready: () => Promise.all(workers.map((w) => w.started)).then(() => undefined),
    async close() {
      closing = true;
      await Promise.all(workers.map((w) => w.worker.terminate()));
    },
  };
}

function startWorker(keyPair: KeyPair, onError: (err: Error) => void): PoolWorker {
  // The worker is TypeScript: it registers tsx's loader itself (loaders registered here do not reach workers).
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(new URL('./handshake-worker.ts', import.meta.url).href)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: { privateKey: keyPair.privateKey, publicKey: keyPair.publicKey }, stderr: false });
  // A pool never keeps the process alive: the server's listeners do.
  worker.unref();
  let started!: () => void;
  const w: PoolWorker = { worker, started: new Promise<void>((resolve) => (started = resolve)), ready: false, dead: false, waiting: new Map() };
  worker.on('message', (msg: 'ready' | HandshakeReply) => {
    if (msg === 'ready') {
      w.ready = true;
      return started();
    }
    const waiter = w.waiting.get(msg.id);
    w.waiting.delete(msg.id);
    if (!waiter) return;
    if ('result' in msg) waiter.resolve(fromWorker(msg.result));
    else waiter.reject(msg.handshakeError ? new HandshakeError(msg.error) : new Error(msg.error));
  });
  const fail = (err: Error) => {
    if (w.dead) return;
    w.dead = true;
    started();
    for (const waiter of w.waiting.values()) waiter.reject(new Error(`handshake worker stopped: ${err.message}`));
    w.waiting.clear();
    onError(err);
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
  return w;
}

/** Structured cloning turns Buffers into plain Uint8Arrays; the response is written to a socket as a Buffer. */
function fromWorker(r: HandshakeResult): HandshakeResult {
  return { ...r, response: Buffer.from(r.response.buffer, r.response.byteOffset, r.response.byteLength) };
}
