/**
 * The server side of HTTP/2 (RFC 9113) on one Noise connection: what tailscale's Go client speaks to control.
 * Prior knowledge (no upgrade, no TLS: Noise already encrypts), request bodies up to a limit, responses streamed
 * under flow control, PING, RST_STREAM and GOAWAY; no server push, priorities ignored.
 *
 * It replaces node:http2, which ran nghttp2 behind a JS stream socket on each Noise duplex: ~30 KiB of native
 * memory per connection, and each map frame copied through two stream layers (bench-results/profiles.md). Here
 * the frames a connection sends in one tick reach the Noise layer in one write. Streams are in stream.ts.
 */
import type { Duplex } from 'node:stream';
import { HpackDecoder, HpackError } from './hpack.ts';
import { BodyError, Http2Request, Http2Response, type StreamOwner } from './stream.ts';
import {
  clientPreface,
  defaultMaxFrameSize,
  defaultWindow,
  ErrorCode,
  Flag,
  frame,
  frameHeaderSize,
  FrameType,
  goAwayFrame,
  maxWindow,
  Setting,
  settingsFrame,
  u32Frame,
} from './frames.ts';

/** Streams one client may have open at once; tailscale uses two or three (a map poll, a register, an SSH check). */
const maxConcurrentStreams = 100;
/** A flush up to this size is joined into one buffer: cheaper than a corked writev of its pieces. */
const smallFlushBytes = 16 << 10;

/** A transport that takes a flush's frames as they are (the Noise duplex seals them without joining them first). */
interface PieceWriter {
  /** Writes the pieces in order, at once; false: wait for 'drain'. */
  writePieces(pieces: readonly Buffer[]): boolean;
}
/** A request's header block, across CONTINUATION frames, may not grow past this. */
const maxHeaderBlockBytes = 64 << 10;
/**
 * Streams a client may reset within resetWindowMs. Opening and resetting streams costs the server a handler call
 * each and the client almost nothing ("rapid reset", CVE-2023-44487); tailscale resets one now and then.
 */
const maxResetsPerWindow = 100;
const resetWindowMs = 10_000;
/**
 * Bytes of PING and SETTINGS acknowledgements that may wait on a client that is not reading: one that floods
 * them without reading would otherwise grow the server's queue without end.
 */
const maxUnreadAnswerBytes = 64 << 10;

/** The connection broke a rule of HTTP/2: answered with GOAWAY and closed. */
class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Http2Options {
  /** Called once per request, when its headers are complete; the body follows through `req.body()`. */
  readonly onRequest: (req: Http2Request, res: Http2Response) => void;
  /** Largest request body taken; past it `body()` rejects with a 413 BodyError. */
  readonly maxBodyBytes: number;
  /** With no stream open for this long, counting from the start, the connection is closed. */
  readonly idleMs?: number;
  /** A request's body must have ended within this, or `body()` rejects with a 408 BodyError. */
  readonly bodyMs?: number;
  /** Told why the connection ended badly (a protocol error, an idle close); for a debug log. */
  readonly onProblem?: (message: string) => void;
}

/** One HTTP/2 connection over a transport that carries plaintext (the Noise duplex). */
export class Http2Connection implements StreamOwner {
  /** SETTINGS_INITIAL_WINDOW_SIZE the client announced: each new stream's send window. */
  peerInitialWindow = defaultWindow;
  #peerMaxFrame = defaultMaxFrameSize;
  #sendWindow = defaultWindow;
  readonly #streams = new Map<number, Http2Response>();
  readonly #sending = new Set<Http2Response>();
  readonly #decoder = new HpackDecoder();
  #out: Buffer[] = [];
  #flushScheduled = false;
  #blocked = false;
  #input: Buffer = Buffer.alloc(0);
  #prefaceSeen = false;
  #prefaceSent = false;
  /** DATA bytes taken on the connection since its window was last replenished. */
  #recvUnacked = 0;
  #lastStreamId = 0;
  /** The stream whose header block CONTINUATION frames are adding to, and the block so far. */
  #continuing: { id: number; flags: number; parts: Buffer[]; size: number } | undefined;
  #goingAway = false;
  /** A connection error was sent: nothing more is read. */
  #broken = false;
  #ended = false;
  #idleTimer: NodeJS.Timeout | undefined;
  #resets = 0;
  #resetWindowStart = 0;
  #unreadAnswerBytes = 0;
  readonly #pieceWriter: PieceWriter | undefined;

  constructor(
    readonly transport: Duplex,
    readonly options: Http2Options,
  ) {
    this.#pieceWriter = 'writePieces' in transport ? (transport as Duplex & PieceWriter) : undefined;
    transport.on('data', (chunk: Buffer) => this.#receive(chunk));
    transport.on('drain', () => {
      this.#blocked = false;
      this.#unreadAnswerBytes = 0;
      this.#flush();
    });
    transport.on('close', () => this.#closeAll());
    this.#armIdle();
  }

  /** Graceful shutdown: GOAWAY, no new streams, and the transport ends once the open ones are done. */
  close(): void {
    if (this.#goingAway) return;
    this.#goingAway = true;
    this.#sendPreface();
    this.send(goAwayFrame(this.#lastStreamId, ErrorCode.noError));
    this.#endIfDone();
  }

  /** @internal Queues a frame for this tick's write. */
  send(bytes: Buffer): void {
    this.#out.push(bytes);
    this.#scheduleFlush();
  }

  /** @internal A stream has bytes or an end to send. */
  wantsToSend(stream: Http2Response): void {
    this.#sending.add(stream);
    this.#scheduleFlush();
  }

  /** @internal A stream is over. */
  forget(stream: Http2Response): void {
    this.#streams.delete(stream.id);
    this.#sending.delete(stream);
    this.#armIdle();
    this.#endIfDone();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(() => this.#flush());
  }

  /** Moves what flow control and the transport allow into frames, then writes this tick's frames at once. */
  #flush(): void {
    this.#flushScheduled = false;
    if (!this.#blocked) {
      for (const stream of this.#sending) {
        if (this.#sendWindow <= 0) break;
        this.#sendWindow -= stream.drain(this.#sendWindow, this.#peerMaxFrame, this.#out);
        if (!stream.pending) this.#sending.delete(stream);
      }
    }
    if (this.#out.length > 0 && !this.transport.destroyed && !this.#ended) {
      if (!this.#write(this.#out)) this.#blocked = true;
    }
    this.#out = [];
    if (this.#goingAway && this.#streams.size === 0 && !this.#ended) {
      this.#ended = true;
      this.transport.end();
    }
  }

  /**
   * The Noise duplex takes the frames as they are (writePieces). Another transport (a socket, in tests) gets small
   * flushes joined and written once, larger ones corked, as one writev.
   */
  #write(frames: Buffer[]): boolean {
    if (this.#pieceWriter) return this.#pieceWriter.writePieces(frames);
    let total = 0;
    for (const f of frames) total += f.length;
    if (frames.length === 1 || total <= smallFlushBytes) return this.transport.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames, total));
    this.transport.cork();
    let ok = true;
    for (const f of frames) ok = this.transport.write(f);
    this.transport.uncork();
    return ok;
  }

  #receive(chunk: Buffer): void {
    if (this.#broken) return;
    this.#input = this.#input.length === 0 ? chunk : Buffer.concat([this.#input, chunk]);
    try {
      this.#readFrames();
    } catch (err) {
      if (err instanceof ConnectionError) return this.#fail(err.code, err.message);
      if (err instanceof HpackError) return this.#fail(ErrorCode.compression, err.message);
      throw err;
    }
  }

  #readFrames(): void {
    if (!this.#prefaceSeen) {
      if (this.#input.length < clientPreface.length) return;
      if (!this.#input.subarray(0, clientPreface.length).equals(clientPreface)) {
        throw new ConnectionError(ErrorCode.protocol, 'http2: no client preface');
      }
      this.#prefaceSeen = true;
      this.#input = this.#input.subarray(clientPreface.length);
      this.#sendPreface();
    }
    while (this.#input.length >= frameHeaderSize && !this.transport.destroyed) {
      const length = this.#input.readUIntBE(0, 3);
      if (length > defaultMaxFrameSize) throw new ConnectionError(ErrorCode.frameSize, `http2: frame of ${length} bytes`);
      if (this.#input.length < frameHeaderSize + length) return;
      const type = this.#input[3]!;
      const flags = this.#input[4]!;
      const streamId = this.#input.readUInt32BE(5) & 0x7fffffff;
      const payload = this.#input.subarray(frameHeaderSize, frameHeaderSize + length);
      this.#input = this.#input.subarray(frameHeaderSize + length);
      this.#onFrame(type, flags, streamId, payload);
    }
  }

  #onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.#continuing && (type !== FrameType.continuation || streamId !== this.#continuing.id)) {
      throw new ConnectionError(ErrorCode.protocol, 'http2: header block interrupted');
    }
    if (type === FrameType.settings || type === FrameType.ping || type === FrameType.goAway) {
      if (streamId !== 0) throw new ConnectionError(ErrorCode.protocol, `http2: frame type ${type} on a stream`);
    } else if (streamId === 0 && type !== FrameType.windowUpdate && type <= FrameType.continuation) {
      throw new ConnectionError(ErrorCode.protocol, `http2: frame type ${type} on stream 0`);
    }
    switch (type) {
      case FrameType.data:
        return this.#onData(flags, streamId, payload);
      case FrameType.headers:
        return this.#onHeaders(flags, streamId, payload);
      case FrameType.continuation:
        return this.#onContinuation(flags, streamId, payload);
      case FrameType.priority:
        if (payload.length !== 5) throw new ConnectionError(ErrorCode.frameSize, 'http2: PRIORITY of the wrong size');
        return;
      case FrameType.rstStream:
        if (payload.length !== 4) throw new ConnectionError(ErrorCode.frameSize, 'http2: RST_STREAM of the wrong size');
        this.#idleStreamCheck(streamId);
        this.#countReset();
        return this.#streams.get(streamId)?.close();
      case FrameType.settings:
        return this.#onSettings(flags, payload);
      case FrameType.pushPromise:
        throw new ConnectionError(ErrorCode.protocol, 'http2: PUSH_PROMISE from a client');
      case FrameType.ping:
        if (payload.length !== 8) throw new ConnectionError(ErrorCode.frameSize, 'http2: PING of the wrong size');
        if (!(flags & Flag.ack)) this.#answer(frame(FrameType.ping, Flag.ack, 0, payload));
        return;
      case FrameType.goAway:
        // The client will open no more streams; those open finish, then it closes the connection.
        return;
      case FrameType.windowUpdate:
        return this.#onWindowUpdate(streamId, payload);
      default:
        return; // unknown frame types are ignored (RFC 9113 4.1)
    }
  }

  #onData(flags: number, streamId: number, payload: Buffer): void {
    this.#idleStreamCheck(streamId);
    // Every byte of a DATA frame, padding included, counts against both windows. Credit goes back once half a
    // window is used, not per frame: a register or map request then costs no WINDOW_UPDATE write of its own.
    this.#recvUnacked += payload.length;
    if (this.#recvUnacked >= defaultWindow / 2) {
      this.send(u32Frame(FrameType.windowUpdate, 0, this.#recvUnacked));
      this.#recvUnacked = 0;
    }
    const stream = this.#streams.get(streamId);
    if (!stream || stream.remoteEnded) return; // a stream this side has closed: the frame was in flight
    stream.recvWindow -= payload.length;
    if (stream.recvWindow < 0) return stream.reset(ErrorCode.flowControl);
    stream.request.receive(unpad(flags, payload));
    if (flags & Flag.endStream) return this.#remoteEnd(stream);
    if (stream.recvWindow < defaultWindow / 2) {
      this.send(u32Frame(FrameType.windowUpdate, streamId, defaultWindow - stream.recvWindow));
      stream.recvWindow = defaultWindow;
    }
  }

  #onHeaders(flags: number, streamId: number, payload: Buffer): void {
    let block = unpad(flags, payload);
    if (flags & Flag.priority) {
      if (block.length < 5) throw new ConnectionError(ErrorCode.frameSize, 'http2: HEADERS too short for its priority');
      block = block.subarray(5);
    }
    if (flags & Flag.endHeaders) return this.#onHeaderBlock(flags, streamId, block);
    this.#continuing = { id: streamId, flags, parts: [block], size: block.length };
  }

  #onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const c = this.#continuing;
    if (!c) throw new ConnectionError(ErrorCode.protocol, 'http2: CONTINUATION without HEADERS');
    c.parts.push(payload);
    c.size += payload.length;
    if (c.size > maxHeaderBlockBytes) throw new ConnectionError(ErrorCode.enhanceYourCalm, 'http2: header block too large');
    if (!(flags & Flag.endHeaders)) return;
    this.#continuing = undefined;
    this.#onHeaderBlock(c.flags, streamId, Buffer.concat(c.parts));
  }

  /** A complete header block: a new request, or trailers ending one. */
  #onHeaderBlock(flags: number, streamId: number, block: Buffer): void {
    const fields = this.#decoder.decode(block); // always, to keep the dynamic table in step with the client's
    if (streamId % 2 === 0) throw new ConnectionError(ErrorCode.protocol, `http2: client stream ${streamId} is even`);
    const open = this.#streams.get(streamId);
    if (open) {
      if (open.remoteEnded || !(flags & Flag.endStream)) throw new ConnectionError(ErrorCode.protocol, 'http2: HEADERS in the middle of a request');
      return this.#remoteEnd(open);
    }
    if (streamId <= this.#lastStreamId) throw new ConnectionError(ErrorCode.streamClosed, `http2: HEADERS on closed stream ${streamId}`);
    this.#lastStreamId = streamId;
    if (this.#goingAway || this.#streams.size >= maxConcurrentStreams) {
      return this.send(u32Frame(FrameType.rstStream, streamId, ErrorCode.refusedStream));
    }
    const request = requestOf(fields, this.options.maxBodyBytes);
    if (!request) return this.send(u32Frame(FrameType.rstStream, streamId, ErrorCode.protocol));
    const stream = new Http2Response(streamId, request, this);
    this.#streams.set(streamId, stream);
    clearTimeout(this.#idleTimer);
    if (flags & Flag.endStream) this.#remoteEnd(stream);
    else this.#bodyDeadline(stream);
    this.options.onRequest(request, stream);
  }

  #onSettings(flags: number, payload: Buffer): void {
    if (flags & Flag.ack) {
      if (payload.length !== 0) throw new ConnectionError(ErrorCode.frameSize, 'http2: SETTINGS ack with a payload');
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(ErrorCode.frameSize, 'http2: SETTINGS of the wrong size');
    for (let at = 0; at < payload.length; at += 6) {
      const id = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      if (id === Setting.initialWindowSize) {
        if (value > maxWindow) throw new ConnectionError(ErrorCode.flowControl, 'http2: initial window too large');
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.#streams.values()) {
          stream.sendWindow += delta;
          if (stream.pending) this.#sending.add(stream);
        }
      } else if (id === Setting.maxFrameSize) {
        if (value < defaultMaxFrameSize || value > 0xffffff) throw new ConnectionError(ErrorCode.protocol, 'http2: invalid max frame size');
        this.#peerMaxFrame = value;
      } else if (id === Setting.enablePush && value > 1) {
        throw new ConnectionError(ErrorCode.protocol, 'http2: invalid ENABLE_PUSH');
      }
    }
    this.#answer(frame(FrameType.settings, Flag.ack, 0));
  }

  #onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.frameSize, 'http2: WINDOW_UPDATE of the wrong size');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(ErrorCode.protocol, 'http2: WINDOW_UPDATE of 0');
      this.#sendWindow += increment;
      if (this.#sendWindow > maxWindow) throw new ConnectionError(ErrorCode.flowControl, 'http2: connection window too large');
    } else {
      this.#idleStreamCheck(streamId);
      const stream = this.#streams.get(streamId);
      if (!stream) return;
      if (increment === 0) return stream.reset(ErrorCode.protocol);
      stream.sendWindow += increment;
      if (stream.sendWindow > maxWindow) return stream.reset(ErrorCode.flowControl);
      if (stream.pending) this.#sending.add(stream);
    }
    this.#scheduleFlush();
  }

  /** Queues an acknowledgement the client asked for, unless it keeps asking while it does not read. */
  #answer(bytes: Buffer): void {
    if (this.#blocked) this.#unreadAnswerBytes += bytes.length;
    if (this.#unreadAnswerBytes > maxUnreadAnswerBytes) throw new ConnectionError(ErrorCode.enhanceYourCalm, 'http2: client asks but does not read');
    this.send(bytes);
  }

  #countReset(): void {
    const now = Date.now();
    if (now - this.#resetWindowStart > resetWindowMs) {
      this.#resetWindowStart = now;
      this.#resets = 0;
    }
    if (++this.#resets > maxResetsPerWindow) throw new ConnectionError(ErrorCode.enhanceYourCalm, 'http2: too many stream resets');
  }

  /** Frames other than HEADERS may not name a stream the client has not opened yet. */
  #idleStreamCheck(streamId: number): void {
    if (streamId > this.#lastStreamId) throw new ConnectionError(ErrorCode.protocol, `http2: frame on idle stream ${streamId}`);
  }

  #remoteEnd(stream: Http2Response): void {
    stream.remoteEnded = true;
    stream.request.end();
    if (stream.pending) this.#sending.add(stream);
    this.#scheduleFlush();
  }

  #bodyDeadline(stream: Http2Response): void {
    const ms = this.options.bodyMs;
    if (!ms) return;
    const timer = setTimeout(() => stream.request.fail(new BodyError(408, 'request body too slow')), ms);
    timer.unref();
    stream.onClose(() => clearTimeout(timer));
    stream.request.body().then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
  }

  #armIdle(): void {
    const ms = this.options.idleMs;
    if (!ms || this.#streams.size > 0 || this.transport.destroyed) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      this.options.onProblem?.('http2: idle connection closed');
      this.transport.destroy();
    }, ms);
    this.#idleTimer.unref();
  }

  /** After GOAWAY, the last stream to close ends the transport (in the flush, after its final frames). */
  #endIfDone(): void {
    if (this.#goingAway && this.#streams.size === 0) this.#scheduleFlush();
  }

  /** A connection error: GOAWAY with its code, then the transport ends (RFC 9113 5.4.1). */
  #fail(code: number, message: string): void {
    this.options.onProblem?.(message);
    this.#sendPreface();
    this.#broken = true;
    this.#goingAway = true;
    this.#closeAll();
    this.#out.push(goAwayFrame(this.#lastStreamId, code, message));
    this.#flush();
    // A client that is not reading would keep the ended transport, and what is queued on it, forever.
    setTimeout(() => this.transport.destroy(), 1_000).unref();
  }

  /**
   * The server's SETTINGS, sent once the client's preface has arrived rather than at once, so that they share
   * a write (one Noise record, one syscall) with the acknowledgement of the client's SETTINGS.
   */
  #sendPreface(): void {
    if (this.#prefaceSent) return;
    this.#prefaceSent = true;
    this.send(settingsFrame([[Setting.maxConcurrentStreams, maxConcurrentStreams]]));
  }

  #closeAll(): void {
    clearTimeout(this.#idleTimer);
    for (const stream of [...this.#streams.values()]) stream.close();
  }
}

/** The request in a header block, or undefined if it is malformed (a stream error). */
function requestOf(fields: [string, string][], maxBodyBytes: number): Http2Request | undefined {
  let method: string | undefined;
  let path: string | undefined;
  const headers: Record<string, string> = {};
  for (const [name, value] of fields) {
    if (name === ':method') method = value;
    else if (name === ':path') path = value;
    else if (!name.startsWith(':')) headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  if (!method || !path || method === 'CONNECT') return undefined;
  return new Http2Request(method, path, headers, maxBodyBytes);
}

/** A DATA or HEADERS payload without its padding (RFC 9113 6.1). */
function unpad(flags: number, payload: Buffer): Buffer {
  if (!(flags & Flag.padded)) return payload;
  if (payload.length < 1 || payload[0]! >= payload.length) throw new ConnectionError(ErrorCode.protocol, 'http2: padding past the frame');
  return payload.subarray(1, payload.length - payload[0]!);
}
