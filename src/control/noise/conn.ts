/** The TS2021 transport record codec as a Node Duplex: `[0x04][u16 BE len][ChaCha20-Poly1305 ciphertext]` over a socket. */
import { Duplex } from 'node:stream';
import { headerSize, msgTypeRecord } from './messages.ts';
import type { TransportKeys } from './handshake.ts';
import { nonceSize, open, sealInto, tagSize } from './primitives.ts';

/** Largest record on the wire, header included (trap T7). */
export const maxMessageSize = 4096;
export const maxCiphertextSize = maxMessageSize - headerSize;
export const maxPlaintextSize = maxCiphertextSize - tagSize;

/** Why a connection was torn down; the duplex is destroyed with it. */
export class NoiseRecordError extends Error {
  override readonly name = 'NoiseRecordError';
}

/**
 * A per-direction nonce: 4 zero bytes then a u64 BIG-endian counter (trap T1, unlike the Noise spec). The counter
 * is kept as two u32 halves; it may not reach 2^64-1, which tailscale reserves as invalid.
 */
function createNonce() {
  const bytes = Buffer.alloc(nonceSize);
  let hi = 0;
  let lo = 0;
  return {
    /** Returns the nonce for the next record and advances the counter. */
    next(): Buffer {
      if (hi === 0xffffffff && lo >= 0xfffffffe) throw new NoiseRecordError('noise: nonce counter exhausted');
      bytes.writeUInt32BE(hi, 4);
      bytes.writeUInt32BE(lo, 8);
      lo = (lo + 1) >>> 0;
      if (lo === 0) hi += 1;
      return bytes;
    },
  };
}

/** Bytes on the wire for this much plaintext: a header and a tag per record. */
const sealedSize = (plaintext: number) => plaintext + Math.ceil(plaintext / maxPlaintextSize) * (headerSize + tagSize);

/**
 * Encrypts plaintext pieces, taken as one byte stream, into records of at most maxPlaintextSize bytes each, all
 * in one buffer (`into` when it is large enough): the pieces (HTTP/2 frame headers and payloads) are never
 * joined, so each byte is copied once.
 */
function createSealer(key: Uint8Array) {
  const nonce = createNonce();
  return (pieces: readonly Uint8Array[], into?: Buffer): Buffer => {
    let total = 0;
    for (const p of pieces) total += p.length;
    const size = sealedSize(total);
    const out = into && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
    let at = 0;
    let piece = 0;
    let offset = 0;
    for (let left = total; left > 0; ) {
      const size = Math.min(left, maxPlaintextSize);
      out[at] = msgTypeRecord;
      out.writeUInt16BE(size + tagSize, at + 1);
      const parts: Uint8Array[] = [];
      for (let need = size; need > 0; ) {
        const p = pieces[piece]!;
        const take = Math.min(need, p.length - offset);
        parts.push(offset === 0 && take === p.length ? p : p.subarray(offset, offset + take));
        need -= take;
        offset += take;
        if (offset === p.length) {
          piece++;
          offset = 0;
        }
      }
      at = sealInto(key, nonce.next(), parts, out, at + headerSize);
      left -= size;
    }
    return out;
  };
}

/**
 * The buffer every connection's flushes are sealed into, taken back when the socket handed the bytes to the
 * kernel during the write (nothing left in its queue): a new output per flush cost more than sealing it in a
 * churn wave (V8 allocating 8 KB pool ArrayBuffers, 5 % of the event loop). A write the socket had to queue
 * keeps the buffer, and the next flush gets a new one.
 */
let scratch = Buffer.allocUnsafeSlow(64 << 10);

/** Reassembles records from arbitrary socket chunks and decrypts them; throws NoiseRecordError on any violation. */
function createOpener(key: Uint8Array) {
  const nonce = createNonce();
  let pending: Buffer = Buffer.alloc(0);
  return {
    /** Consumes a chunk and returns the non-empty plaintexts of the complete records in it. */
    push(chunk: Buffer): Buffer[] {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const out: Buffer[] = [];
      let at = 0;
      while (pending.length - at >= headerSize) {
        if (pending[at] !== msgTypeRecord) throw new NoiseRecordError(`noise: unexpected message type ${pending[at]}`);
        const len = pending.readUInt16BE(at + 1);
        if (headerSize + len > maxMessageSize) throw new NoiseRecordError('noise: record too large');
        if (len < tagSize) throw new NoiseRecordError('noise: record shorter than its tag');
        if (pending.length - at < headerSize + len) break;
        const sealed = pending.subarray(at + headerSize, at + headerSize + len);
        let pt: Buffer;
        try {
          pt = open(key, nonce.next(), sealed);
        } catch (err) {
          if (err instanceof NoiseRecordError) throw err;
          throw new NoiseRecordError('noise: record authentication failed');
        }
        if (pt.length > 0) out.push(pt);
        at += headerSize + len;
      }
      pending = pending.subarray(at);
      return out;
    },
    /** Bytes of an incomplete record still waiting for more input. */
    buffered: () => pending.length,
  };
}

/** Options for wrapping a socket. */
export interface NoiseConnOptions extends TransportKeys {
  /** Bytes already read from the socket after the handshake (the upgrade's `head`). */
  readonly head?: Buffer;
  /** A record that has started arriving must be complete within this many ms, or the connection is destroyed. */
  readonly recordTimeoutMs?: number;
}

/**
 * An encrypted TS2021 transport over a byte stream. Writes are split into records of at most 4077 plaintext
 * bytes and respect the socket's backpressure; reads reassemble partial records. Any decryption error, oversized
 * or malformed record destroys the duplex and the socket; zero-length records are skipped.
 */
export class NoiseConn extends Duplex {
  readonly #socket: Duplex;
  readonly #seal: (pieces: readonly Uint8Array[], into?: Buffer) => Buffer;
  readonly #opener: ReturnType<typeof createOpener>;
  readonly #recordTimeoutMs: number;
  #stalled: NodeJS.Timeout | undefined;
  /** writePieces found the socket full and will emit 'drain' when it empties. */
  #drainAwaited = false;

  constructor(socket: Duplex, options: NoiseConnOptions) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    this.#recordTimeoutMs = options.recordTimeoutMs ?? 0;
    this.#seal = createSealer(options.txKey);
    this.#opener = createOpener(options.rxKey);
    if (options.head && options.head.length > 0) this.#onData(options.head);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  /** The wrapped socket, e.g. for its remote address. */
  get socket(): Duplex {
    return this.#socket;
  }

  #onData(chunk: Buffer): void {
    if (this.destroyed) return;
    let plaintexts: Buffer[];
    try {
      plaintexts = this.#opener.push(chunk);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    this.#watchPartialRecord();
    if (plaintexts.length === 0) return;
    // One push per socket chunk, not per record: the reader's cost is per chunk (node:http2's JS stream socket
    // spent ~8 % of a client receiving large maps in 4 KB records), and HTTP/2 frames span records anyway.
    const pt = plaintexts.length === 1 ? plaintexts[0]! : Buffer.concat(plaintexts);
    if (!this.push(pt)) this.#socket.pause();
  }

  /** A peer that stops sending in the middle of a record would otherwise hold the connection forever. */
  #watchPartialRecord(): void {
    if (this.#opener.buffered() === 0) {
      clearTimeout(this.#stalled);
      this.#stalled = undefined;
    } else if (this.#stalled === undefined && this.#recordTimeoutMs > 0) {
      this.#stalled = setTimeout(() => this.destroy(new NoiseRecordError('noise: record stalled midway')), this.#recordTimeoutMs);
      this.#stalled.unref();
    }
  }

  #onEnd(): void {
    if (this.#opener.buffered() > 0) this.destroy(new NoiseRecordError('noise: connection closed inside a record'));
    else this.push(null);
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#send([chunk], cb);
  }

  /** Several writes (a corked flush) are sealed as one stream of records and written at once. */
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.#send(chunks.map((c) => c.chunk), cb);
  }

  /**
   * Seals a flush's frames as one run of records and writes them to the socket in one call, past the Writable's
   * machinery (its queue, a tick and a callback per write): the HTTP/2 layer's path, once per connection per tick,
   * ten thousand times in a churn wave's flush. While the queue holds anything the frames go through it, so bytes
   * keep their order. False: wait for 'drain'.
   */
  writePieces(pieces: readonly Buffer[]): boolean {
    if (this.writableLength > 0 || this.writableCorked > 0) {
      this.cork();
      for (const p of pieces) this.write(p);
      this.uncork();
      return !this.writableNeedDrain;
    }
    let written: boolean;
    try {
      written = this.#sealAndWrite(pieces);
    } catch (err) {
      this.destroy(err as Error);
      return false;
    }
    if (written) return true;
    if (!this.#drainAwaited) {
      this.#drainAwaited = true;
      this.#socket.once('drain', () => {
        this.#drainAwaited = false;
        this.emit('drain');
      });
    }
    return false;
  }

  #send(pieces: readonly Buffer[], cb: (err?: Error | null) => void): void {
    let written: boolean;
    try {
      written = this.#sealAndWrite(pieces);
    } catch (err) {
      cb(err as Error);
      return;
    }
    if (written) cb();
    else this.#socket.once('drain', () => cb());
  }

  /** Seals the pieces into the shared buffer (a new one when they do not fit) and writes them; false: the socket is full. */
  #sealAndWrite(pieces: readonly Buffer[]): boolean {
    const wire = this.#seal(pieces, scratch);
    const written = this.#socket.write(wire);
    if (wire.buffer === scratch.buffer && (this.#socket.writableLength > 0 || this.#socket.destroyed)) scratch = Buffer.allocUnsafeSlow(scratch.length);
    return written;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#socket.end(cb);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    clearTimeout(this.#stalled);
    this.#socket.destroy();
    cb(err);
  }
}
