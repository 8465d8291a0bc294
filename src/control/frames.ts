/** Map-response framing: `[u32 LITTLE-endian length][zstd frame of JSON]` (trap T12), with an encoder and a decoder. */
import zstd from 'zstd-napi';

/** Bytes of the little-endian length prefix. */
export const lengthPrefixSize = 4;
/** Default cap on one decoded frame's compressed size, so a broken stream cannot make the decoder allocate 4 GiB. */
export const defaultMaxFrameSize = 64 << 20;

/** Encodes MapResponses into frames with one reusable zstd compressor. */
export interface FrameEncoder {
  /** JSON-encodes a value and frames it. */
  encode(value: unknown): Buffer;
  /** Text as one zstd frame, without the length prefix: compressed, or stored as is when it is short. */
  compress(text: string): Buffer;
  /**
   * Frames zstd frames that decode, one after the other, to one JSON text: the client's decoder reads every
   * frame of a message (tailscale util/zstdframe AppendDecode), so parts compressed once can be shared.
   */
  frame(bodies: readonly Uint8Array[]): Buffer;
}

/**
 * Creates a frame encoder. Level 1, as Headscale's mapper (zstdframe.FastestCompression): on netmap JSON, whose
 * keys are random hex, it compresses a 100-peer map in half the time of zstd's default level 3, to the same size.
 */
export function createFrameEncoder(options: { level?: number } = {}): FrameEncoder {
  const compressor = new zstd.Compressor();
  compressor.setParameters({ compressionLevel: options.level ?? 1 });
  const frame = (bodies: readonly Uint8Array[]): Buffer => {
    const prefix = Buffer.allocUnsafe(lengthPrefixSize);
    prefix.writeUInt32LE(bodies.reduce((n, b) => n + b.length, 0), 0);
    return Buffer.concat([prefix, ...bodies]);
  };
  // The compressor copies its input: texts up to scratchChars are encoded into one reused buffer, not a new one each.
  const scratch = Buffer.allocUnsafeSlow(scratchChars * 3);
  const utf8 = (text: string) => (text.length <= scratchChars ? scratch.subarray(0, scratch.write(text, 'utf8')) : Buffer.from(text, 'utf8'));
  const compress = (text: string): Buffer => (text.length < storedBelow ? storedFrame(text) : compressor.compress(utf8(text)));
  return { compress, frame, encode: (value) => frame([compressor.compress(utf8(JSON.stringify(value)))]) };
}

/** Texts up to this many UTF-16 units (at most 3 UTF-8 bytes each) are compressed from the encoder's own buffer. */
const scratchChars = 64 << 10;

/**
 * Text shorter than this (in UTF-16 units) goes into a stored frame: the separators and small per-viewer pieces
 * between a full map's shared chunks are too short for compression to gain anything but a native call.
 */
const storedBelow = 128;

/**
 * A zstd frame of one raw (stored) block (RFC 8878 3.1.1): magic number, a single-segment header with the
 * content size, a last-block header of type Raw, then the bytes themselves. Built in JS, without the compressor.
 */
export function storedFrame(text: string): Buffer {
  const n = Buffer.byteLength(text, 'utf8');
  if (n >= 128 << 10) throw new Error('storedFrame: a raw block holds at most 128 KiB');
  // Frame_Content_Size: 1 byte below 256, 2 bytes holding n - 256 below 65,792, else 4 (flag 0, 1, 2).
  const fcs = n < 256 ? 1 : n < 65_792 ? 2 : 4;
  const out = Buffer.allocUnsafe(4 + 1 + fcs + 3 + n);
  out.writeUInt32LE(0xfd2fb528, 0);
  out[4] = 0x20 | ((fcs >> 1) << 6); // Single_Segment_flag and Frame_Content_Size_flag
  if (fcs === 1) out[5] = n;
  else if (fcs === 2) out.writeUInt16LE(n - 256, 5);
  else out.writeUInt32LE(n, 5);
  const at = 5 + fcs;
  out.writeUIntLE((n << 3) | 1, at, 3); // Block_Size, Block_Type 0 (Raw), Last_Block
  out.write(text, at + 3, 'utf8');
  return out;
}

/** Incrementally decodes a framed stream (for the load generator and tests). */
export interface FrameDecoder {
  /** Consumes bytes (kept by reference until their frame is whole) and returns every complete frame's parsed JSON. Throws on a bad frame. */
  push(chunk: Uint8Array): unknown[];
  /** Bytes of an incomplete frame still waiting for input. */
  buffered(): number;
}

/**
 * Creates a frame decoder; frames larger than maxFrameSize compressed bytes are an error. Chunks are kept in a
 * list until a whole frame has arrived: concatenating on every chunk copied a large map once per chunk (the
 * load generator spent a quarter of its CPU there at 1,000 allow-all nodes).
 */
export function createFrameDecoder(options: { maxFrameSize?: number } = {}): FrameDecoder {
  const maxFrameSize = options.maxFrameSize ?? defaultMaxFrameSize;
  const decompressor = new zstd.Decompressor();
  let chunks: Buffer[] = [];
  let buffered = 0;
  /** Bytes the frame at the head of the buffer needs in all, once its length prefix has arrived. */
  let needed = lengthPrefixSize;
  return {
    push(chunk) {
      chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      buffered += chunk.byteLength;
      const out: unknown[] = [];
      while (buffered >= needed) {
        let pending = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, buffered);
        chunks = [pending];
        if (needed === lengthPrefixSize) {
          const size = pending.readUInt32LE(0);
          if (size > maxFrameSize) throw new Error(`map frame of ${size} bytes exceeds the ${maxFrameSize}-byte limit`);
          needed = lengthPrefixSize + size;
          if (buffered < needed) break;
        }
        const body = pending.subarray(lengthPrefixSize, needed);
        out.push(JSON.parse(decompressor.decompress(body).toString('utf8')));
        pending = pending.subarray(needed);
        chunks = pending.length ? [pending] : [];
        buffered = pending.length;
        needed = lengthPrefixSize;
      }
      return out;
    },
    buffered: () => buffered,
  };
}
