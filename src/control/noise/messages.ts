/** Byte layouts of the TS2021 handshake messages: initiation (101 bytes), response (51 bytes), error frame. */
import { keySize, tagSize } from './primitives.ts';

export const msgTypeInitiation = 0x01;
export const msgTypeResponse = 0x02;
export const msgTypeError = 0x03;
export const msgTypeRecord = 0x04;

/** Initiation header: u16 BE version, type, u16 BE payload length (trap T8). */
export const initiationHeaderSize = 2 + 1 + 2;
/** Initiation payload: ephemeral key, encrypted machine key, tag of the empty payload. */
export const initiationPayloadSize = keySize + (keySize + tagSize) + tagSize;
export const initiationSize = initiationHeaderSize + initiationPayloadSize;
/** Response and record header: type, u16 BE length (no version). */
export const headerSize = 1 + 2;
/** Response payload: server ephemeral key, tag of the empty payload. */
export const responsePayloadSize = keySize + tagSize;
export const responseSize = headerSize + responsePayloadSize;
/** The error frame's length is a u16, so its text is capped there. */
export const maxErrorTextSize = 0xffff;

/** The fields of a syntactically valid initiation message. */
export interface Initiation {
  version: number;
  ephemeralPub: Uint8Array;
  machinePubSealed: Uint8Array;
  tag: Uint8Array;
}

/** A handshake message that fails validation; `message` is safe to send to the client in an error frame. */
export class HandshakeError extends Error {
  override readonly name = 'HandshakeError';
}

/** Parses an initiation message, throwing HandshakeError on the wrong size, type or length. */
export function parseInitiation(msg: Uint8Array): Initiation {
  if (msg.length !== initiationSize) throw new HandshakeError('wrong handshake initiation size');
  const view = Buffer.from(msg.buffer, msg.byteOffset, msg.length);
  if (view[2] !== msgTypeInitiation) throw new HandshakeError('unexpected handshake message type');
  if (view.readUInt16BE(3) !== initiationPayloadSize) throw new HandshakeError('wrong handshake initiation length');
  let at = initiationHeaderSize;
  const take = (n: number) => view.subarray(at, (at += n));
  return {
    version: view.readUInt16BE(0),
    ephemeralPub: take(keySize),
    machinePubSealed: take(keySize + tagSize),
    tag: take(tagSize),
  };
}

/** Builds an initiation message from its fields. */
export function buildInitiation(version: number, ephemeralPub: Uint8Array, machinePubSealed: Uint8Array, tag: Uint8Array): Buffer {
  const msg = Buffer.alloc(initiationSize);
  msg.writeUInt16BE(version, 0);
  msg[2] = msgTypeInitiation;
  msg.writeUInt16BE(initiationPayloadSize, 3);
  Buffer.concat([ephemeralPub, machinePubSealed, tag]).copy(msg, initiationHeaderSize);
  return msg;
}

/** Builds the 51-byte response message. */
export function buildResponse(ephemeralPub: Uint8Array, tag: Uint8Array): Buffer {
  const msg = Buffer.alloc(responseSize);
  msg[0] = msgTypeResponse;
  msg.writeUInt16BE(responsePayloadSize, 1);
  Buffer.concat([ephemeralPub, tag]).copy(msg, headerSize);
  return msg;
}

/** Builds an unauthenticated error frame `[0x03][u16 BE len][text]`, truncating the text to fit. */
export function buildErrorFrame(text: string): Buffer {
  const body = Buffer.from(text, 'utf8').subarray(0, maxErrorTextSize);
  const hdr = Buffer.alloc(headerSize);
  hdr[0] = msgTypeError;
  hdr.writeUInt16BE(body.length, 1);
  return Buffer.concat([hdr, body]);
}
