/**
 * The blocking bridge to PostgreSQL: the store's interface is synchronous (state writes inside one synchronous
 * call), so each call posts its statements to a worker thread running node-postgres and blocks on Atomics.wait
 * until the answer arrives or the deadline passes. A deadline or a lost connection marks the store down:
 * calls then fail at once with StoreUnavailableError until the worker's probe reaches the server again.
 * `callAsync` posts without blocking (a group commit): the worker still runs requests in order, so a blocking
 * call made after it waits for it.
 */
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { StoreUnavailableError } from '../errors.ts';
import { slot, type Failure, type Request, type Response, type SectionFailure, type Step, type WorkerData } from './protocol.ts';

export interface BridgeOptions {
  readonly url: string;
  readonly poolSize: number;
  readonly timeoutMs: number;
  readonly ssl: WorkerData['ssl'];
}

export type Results = { rows: Record<string, unknown>[]; rowCount: number }[];

/** A request's results, and the writes of an isolating request (a group commit) that were refused alone. */
export interface Answer {
  readonly results: Results;
  readonly failed: readonly SectionFailure[];
}

export interface CallOptions {
  readonly hold?: boolean;
  readonly release?: boolean;
  /** The savepoint each section of a group commit begins with (Request.isolate). */
  readonly isolate?: string;
  /** Not queued behind earlier requests (Request.unordered); never with hold. */
  readonly unordered?: boolean;
}

/** PostgreSQL refused a statement (the server itself is fine). */
export class StatementError extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

export interface Bridge {
  /** Runs the statements in order; throws StoreUnavailableError or StatementError. */
  call(stmts: readonly Step[], opts?: CallOptions): Results;
  /** The same, with the sections that failed alone. */
  answer(stmts: readonly Step[], opts?: CallOptions): Answer;
  /** The same without blocking the event loop; rejects with StoreUnavailableError or StatementError. */
  callAsync(stmts: readonly Step[], opts?: CallOptions): Promise<Answer>;
  /** Gives up the transaction connection without waiting (after a failure that left it unusable). */
  abandon(): void;
  readonly down: boolean;
  close(): Promise<void>;
}

/** How long the worker may take to start (it compiles its TypeScript first). */
const bootMs = 60_000;

export function openBridge(opts: BridgeOptions): Bridge {
  const shared = new SharedArrayBuffer(4 * 4);
  const state = new Int32Array(shared);
  const { port1, port2 } = new MessageChannel();
  const data: WorkerData = { url: opts.url, poolSize: opts.poolSize, timeoutMs: opts.timeoutMs, ssl: opts.ssl, shared, port: port2 };
  // The worker is TypeScript: it registers tsx's loader itself (loaders registered here do not reach workers).
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(new URL('./worker.ts', import.meta.url).href)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: data, transferList: [port2], stderr: false });
  worker.unref();
  // Set from the worker's events; read through a property so the checks below are not narrowed away.
  const life: { exited?: Error } = {};
  worker.on('error', (err) => (life.exited = err));
  worker.on('exit', (code) => (life.exited ??= new Error(`worker exited with code ${code}`)));
  const stopped = (): Error | undefined => life.exited;

  waitFor(() => Atomics.load(state, slot.ready) === 1 || life.exited !== undefined, bootMs);
  if (life.exited) throw new StoreUnavailableError(`PostgreSQL bridge failed to start: ${life.exited.message}`);
  if (Atomics.load(state, slot.ready) !== 1) throw new StoreUnavailableError('PostgreSQL bridge did not start in time');

  /** Blocks until `done()` or the deadline; wakes on every signal the worker gives. */
  function waitFor(done: () => boolean, ms: number): void {
    const deadline = Date.now() + ms;
    for (;;) {
      const seen = Atomics.load(state, slot.signal);
      if (done()) return;
      const left = deadline - Date.now();
      if (left <= 0) return;
      Atomics.wait(state, slot.signal, seen, Math.min(left, 100));
    }
  }

  let nextId = 1;
  /** Answers awaited by callAsync, by request id. */
  const awaited = new Map<number, (answer: Response) => void>();
  /** Hands an answer to its async caller; false when it is not one (a blocking call's, or one that timed out). */
  const deliver = (answer: Response) => {
    const take = awaited.get(answer.id);
    awaited.delete(answer.id);
    take?.(answer);
    return take !== undefined;
  };
  port1.on('message', deliver);
  port1.unref();
  const post = (stmts: readonly Step[], { hold = false, release = false, isolate, unordered }: CallOptions): Request => {
    if (life.exited) throw new StoreUnavailableError(`PostgreSQL bridge stopped: ${life.exited.message}`);
    if (Atomics.load(state, slot.down) === 1) throw new StoreUnavailableError('PostgreSQL is unreachable (reconnecting)');
    const req: Request = { id: nextId++, stmts, hold, release, ...(isolate ? { isolate } : {}), ...(unordered && !hold ? { unordered } : {}) };
    port1.postMessage(req);
    return req;
  };
  /** No answer in time: the store goes down and the transaction connection is given up. */
  const timedOut = () => {
    Atomics.store(state, slot.down, 1);
    bridge.abandon();
    const gone = stopped();
    return new StoreUnavailableError(gone ? `PostgreSQL bridge stopped: ${gone.message}` : `PostgreSQL did not answer within ${opts.timeoutMs} ms`);
  };
  const answerOf = (answer: Response): Answer => {
    if (answer.ok) return { results: answer.results, failed: answer.failed ?? [] };
    if (answer.failure.unavailable) throw new StoreUnavailableError(answer.failure.message);
    throw new StatementError(answer.failure);
  };
  const bridge: Bridge = {
    call: (stmts, o) => bridge.answer(stmts, o).results,
    answer(stmts, o = {}) {
      const req = post(stmts, o);
      const got: { answer?: Response } = {};
      waitFor(() => {
        // Answers to calls that timed out earlier may still arrive: they are skipped.
        for (let m = receiveMessageOnPort(port1); m; m = receiveMessageOnPort(port1)) {
          const answer = m.message as Response;
          if (answer.id === req.id) return !!(got.answer = answer);
          deliver(answer);
        }
        return life.exited !== undefined;
      }, opts.timeoutMs);
      if (!got.answer) throw timedOut();
      return answerOf(got.answer);
    },
    callAsync(stmts, o = {}) {
      return new Promise((resolve, reject) => {
        const req = post(stmts, o);
        const timer = setTimeout(() => {
          awaited.delete(req.id);
          reject(timedOut());
        }, opts.timeoutMs);
        awaited.set(req.id, (answer) => {
          clearTimeout(timer);
          try {
            resolve(answerOf(answer));
          } catch (err) {
            reject(err);
          }
        });
      });
    },
    abandon() {
      port1.postMessage({ id: 0, abandon: true });
    },
    get down() {
      return Atomics.load(state, slot.down) === 1 || life.exited !== undefined;
    },
    async close() {
      port1.close();
      await worker.terminate();
    },
  };
  return bridge;
}
