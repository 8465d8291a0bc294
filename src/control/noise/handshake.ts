/** The server (responder) side of the TS2021 Noise IK handshake: initiation in, 51-byte response and transport keys out. */
import { buildResponse, parseInitiation } from './messages.ts';
import { machineKeyText } from './keys.ts';
import { generateEphemeral, type EphemeralKeyPair, type KeyPair } from './primitives.ts';
import { initSymmetricState } from './symmetric.ts';

export { HandshakeError, buildErrorFrame, initiationSize, responseSize } from './messages.ts';

/** Transport keys of one direction pair; the server sends with k2 and receives with k1 (trap T6). */
export interface TransportKeys {
  readonly txKey: Uint8Array;
  readonly rxKey: Uint8Array;
}

/** What a completed responder handshake yields. */
export interface HandshakeResult extends TransportKeys {
  /** The client's machine public key as `mkey:<64 hex>`: it authenticates every request on the connection. */
  readonly machineKey: string;
  readonly machinePublic: Uint8Array;
  /** The client's protocol version (its capability version) from the initiation header. */
  readonly version: number;
  /** The 51-byte response to write to the client, raw, right after the 101 headers. */
  readonly response: Buffer;
  readonly handshakeHash: Uint8Array;
}

/** Reads the cleartext protocol version of an initiation, validating only its framing. */
export function initiationVersion(init: Uint8Array): number {
  return parseInitiation(init).version;
}

/**
 * Runs the responder half of `Noise_IK_25519_ChaChaPoly_BLAKE2s` on a 101-byte initiation. Throws HandshakeError
 * for malformed framing (send its message in an error frame) and a plain Error when decryption fails.
 */
export function respond(init: Uint8Array, server: KeyPair, ephemeral: KeyPair | EphemeralKeyPair = generateEphemeral()): HandshakeResult {
  const msg = parseInitiation(init);
  const s = initSymmetricState(msg.version);
  s.mixHash(server.publicKey); // <- s
  s.mixHash(msg.ephemeralPub); // -> e
  const machinePublic = decrypt(() => s.decryptAndHash(s.mixDH(server.privateKey, msg.ephemeralPub), msg.machinePubSealed)); // es, s
  decrypt(() => s.decryptAndHash(s.mixDH(server.privateKey, machinePublic), msg.tag)); // ss
  s.mixHash(ephemeral.publicKey); // <- e
  s.mixDH(ephemeral.privateKey, msg.ephemeralPub); // ee
  const tag = s.encryptAndHash(s.mixDH(ephemeral.privateKey, machinePublic), new Uint8Array(0)); // se
  const handshakeHash = s.handshakeHash();
  const [k1, k2] = s.split();
  return {
    machineKey: machineKeyText(machinePublic),
    machinePublic,
    version: msg.version,
    response: buildResponse(ephemeral.publicKey, tag),
    handshakeHash,
    txKey: k2,
    rxKey: k1,
  };
}

function decrypt(step: () => Buffer): Buffer {
  try {
    return step();
  } catch {
    throw new Error('noise: handshake authentication failed');
  }
}
