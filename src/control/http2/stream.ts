/** One request and its response on an HTTP/2 connection: what the control handlers see of HTTP/2. */
import { encodeResponseHeaders } from './hpack.ts';
import { defaultWindow, ErrorCode, Flag, frame, frameHeader, FrameType, u32Frame } from './frames.ts';

/** What a stream needs of its connection (connection.ts). */
export interface StreamOwner {
  /** SETTINGS_INITIAL_WINDOW_SIZE the client announced: a new stream's send window. */
  readonly peerInitialWindow: number;
  /** Queues a frame for this tick's write. */
  send(bytes: Buffer): void;
  /** The stream has bytes or an end to send. */
  wantsToSend(stream: Http2Response): void;
  /** The stream is over. */
  forget(stream: Http2Response): void;
}

/** A request the server could not take in whole: its status is the response to give. */
export class BodyError extends Error {
  override readonly name = 'BodyError';
  constructor(
    readonly status: 408 | 413,
    message: string,
  ) {
    super(message);
  }
}

/** The request half of a stream: its headers and, once it has ended, its body. */
export class Http2Request {
  #chunks: Buffer[] = [];
  #size = 0;
  #error: Error | undefined;
  #ended = false;
  readonly #waiters: { resolve(body: Buffer): void; reject(err: Error): void }[] = [];

  constructor(
    readonly method: string,
    /** The `:path` pseudo-header: path and query. */
    readonly url: string,
    readonly headers: Readonly<Record<string, string>>,
    readonly maxBodyBytes: number,
  ) {}

  /** The whole body, once the client has ended it. */
  body(): Promise<Buffer> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(Buffer.concat(this.#chunks));
    return new Promise((resolve, reject) => void this.#waiters.push({ resolve, reject }));
  }

  /** @internal */
  receive(chunk: Buffer): void {
    if (this.#error || this.#ended) return;
    this.#size += chunk.length;
    if (this.#size > this.maxBodyBytes) return this.fail(new BodyError(413, 'request body too large'));
    this.#chunks.push(chunk);
  }

  /** @internal */
  end(): void {
    if (this.#error || this.#ended) return;
    this.#ended = true;
    const body = Buffer.concat(this.#chunks);
    for (const w of this.#waiters.splice(0)) w.resolve(body);
  }

  /** @internal */
  fail(err: Error): void {
    if (this.#error || this.#ended) return;
    this.#error = err;
    this.#chunks = [];
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }
}

/** The response half of a stream, and the stream's state. */
export class Http2Response {
  /** Bytes written and not yet handed to the connection (flow control, or a transport that is not draining). */
  writableLength = 0;
  #headersSent = false;
  #ended = false;
  #closed = false;
  /** The client has sent END_STREAM (or reset). */
  remoteEnded = false;
  /** Flow-control credit for DATA to the client. */
  sendWindow: number;
  /** Credit the client has for DATA to us; replenished as it is used. */
  recvWindow = defaultWindow;
  readonly #queue: Buffer[] = [];
  #endStreamSent = false;
  readonly #closeListeners: (() => void)[] = [];

  constructor(
    readonly id: number,
    readonly request: Http2Request,
    readonly connection: StreamOwner,
  ) {
    this.sendWindow = connection.peerInitialWindow;
  }

  get headersSent(): boolean {
    return this.#headersSent;
  }

  /** end() has been called (or the stream is gone). */
  get writableEnded(): boolean {
    return this.#ended || this.#closed;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** end() has been called: the whole answer is written (it may still be queued). */
  get answered(): boolean {
    return this.#ended;
  }

  writeHead(status: number, headers: Readonly<Record<string, string>> = {}): this {
    if (this.#headersSent || this.#closed) return this;
    this.#headersSent = true;
    this.connection.send(frame(FrameType.headers, Flag.endHeaders, this.id, encodeResponseHeaders(status, headers)));
    return this;
  }

  write(chunk: Buffer | string): boolean {
    if (this.writableEnded) return false;
    if (!this.#headersSent) this.writeHead(200);
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (bytes.length > 0) {
      this.#queue.push(bytes);
      this.writableLength += bytes.length;
      this.connection.wantsToSend(this);
    }
    return true;
  }

  end(chunk?: Buffer | string): void {
    if (this.writableEnded) return;
    if (chunk !== undefined) this.write(chunk);
    if (!this.#headersSent) this.writeHead(200);
    this.#ended = true;
    this.connection.wantsToSend(this);
  }

  /** Drops what is queued and resets the stream (RST_STREAM), CANCEL unless told. */
  reset(code: number = ErrorCode.cancel): void {
    if (this.#closed) return;
    this.connection.send(u32Frame(FrameType.rstStream, this.id, code));
    this.close();
  }

  /** Runs `listener` once the stream is over: ended both ways, reset by either side, or its connection gone. */
  onClose(listener: () => void): void {
    if (this.#closed) queueMicrotask(listener);
    else this.#closeListeners.push(listener);
  }

  /**
   * @internal Moves queued bytes out as DATA frames while `credit` (the connection's window) allows; returns the
   * credit used. Sends END_STREAM after the last byte once end() was called.
   */
  drain(credit: number, maxFrame: number, out: Buffer[]): number {
    let used = 0;
    while (this.#queue.length > 0 && this.sendWindow > 0 && credit - used > 0) {
      const head = this.#queue[0]!;
      const n = Math.min(head.length, this.sendWindow, credit - used, maxFrame);
      const last = n === head.length && this.#queue.length === 1 && this.#ended;
      out.push(frameHeader(FrameType.data, last ? Flag.endStream : 0, this.id, n), head.subarray(0, n));
      if (n === head.length) this.#queue.shift();
      else this.#queue[0] = head.subarray(n);
      this.sendWindow -= n;
      this.writableLength -= n;
      used += n;
      if (last) this.#endStreamSent = true;
    }
    if (this.#ended && this.#queue.length === 0 && !this.#endStreamSent) {
      out.push(frameHeader(FrameType.data, Flag.endStream, this.id, 0));
      this.#endStreamSent = true;
    }
    if (this.#endStreamSent) {
      // A complete response to a request still being sent: tell the client to stop (RFC 9113 8.1).
      if (!this.remoteEnded) out.push(u32Frame(FrameType.rstStream, this.id, ErrorCode.noError));
      this.close();
    }
    return used;
  }

  /** @internal Whether drain() has anything to do. */
  get pending(): boolean {
    return !this.#closed && (this.#queue.length > 0 || (this.#ended && !this.#endStreamSent));
  }

  /** @internal The stream is over: no more frames either way. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.writableLength = 0;
    // Only a request still arriving has a reader to tell (and an Error's stack trace is not free).
    if (!this.remoteEnded) this.request.fail(new Error('http2: stream closed before its request body ended'));
    this.connection.forget(this);
    for (const listener of this.#closeListeners.splice(0)) listener();
  }
}
