/**
 * JSON text in pieces, for messages that carry parts many other messages carry too: text written for this
 * message, and shared parts (a packet filter rule's SrcIPs, a chunk of peers) compressed once into a zstd frame
 * of their own. A map frame may hold several zstd frames that decode to one text (frames.ts), so a shared part
 * is copied into every message that carries it, not serialized and compressed again for each.
 */
import { createHash } from 'node:crypto';
import type { FrameEncoder } from './frames.ts';

/** Text, or a shared part as its zstd frame. */
export type Piece = string | Buffer;

/** Appends a piece, joining it to the last one when both are text (so each run of text is compressed once). */
export function appendPiece(out: Piece[], piece: Piece): void {
  const last = out.length - 1;
  if (typeof piece === 'string' && typeof out[last] === 'string') out[last] += piece;
  else out.push(piece);
}

export function createSharedParts(frames: FrameEncoder) {
  /** A digest of each shared part's text: two parts of the same text (say, a rule compiled again) compare equal. */
  const digests = new WeakMap<Buffer, string>();
  return {
    /**
     * Compresses a text that many messages will carry. `name`, when the caller already has one that says what
     * the text is (it must differ from every other text's), spares hashing it.
     */
    part(text: string, name?: string): Buffer {
      const body = frames.compress(text);
      digests.set(body, name ?? createHash('sha256').update(text).digest('base64'));
      return body;
    },
    /** A short text that stands for the pieces (whose frames all came from part()): equal keys, equal JSON. */
    key(pieces: readonly Piece[]): string {
      let key = '';
      for (const p of pieces) {
        if (typeof p === 'string') key += p;
        else {
          const digest = digests.get(p);
          if (digest === undefined) throw new Error('pieces: a frame that did not come from part() has no key');
          key += `\u0000${digest}\u0000`;
        }
      }
      return key;
    },
    /** Whether two lists of pieces (whose frames all came from part()) stand for the same JSON, as their keys would tell. */
    same(a: readonly Piece[], b: readonly Piece[]): boolean {
      if (a === b) return true;
      if (a.length !== b.length) return false;
      for (let i = 0; i < a.length; i++) {
        const x = a[i]!;
        const y = b[i]!;
        if (x === y) continue;
        const digest = typeof x === 'string' || typeof y === 'string' ? undefined : digests.get(x);
        if (digest === undefined || digest !== digests.get(y as Buffer)) return false;
      }
      return true;
    },
    /** The pieces as zstd frames: each run of text compressed (or stored, when short), each shared part as it is. */
    bodies(pieces: readonly Piece[]): Buffer[] {
      const out: Buffer[] = [];
      for (const p of pieces) if (typeof p !== 'string') out.push(p);
      else if (p) out.push(frames.compress(p));
      return out;
    },
  };
}
