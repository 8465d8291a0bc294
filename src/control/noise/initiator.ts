/** The client (initiator) side of the TS2021 handshake, for tests and the load generator; real clients are Go. */
import { buildInitiation, headerSize, HandshakeError, msgTypeError, msgTypeResponse, responsePayloadSize, responseSize } from './messages.ts';
import type { TransportKeys } from './handshake.ts';
import { generateKeyPair, keySize, type KeyPair } from './primitives.ts';
import { initSymmetricState } from './symmetric.ts';

/** A started handshake: the initiation to send and a continuation that consumes the server's response. */
export interface Initiator {
  readonly initiation: Buffer;
  /** Finishes on the 51-byte response; throws HandshakeError with the server's text on an error frame. */
  finish(response: Uint8Array): TransportKeys & { handshakeHash: Uint8Array };
}

/** Starts the initiator half (`-> e, es, s, ss`) for the machine key towards the server's public key. */
export function initiate(machine: KeyPair, serverPublic: Uint8Array, version: number, ephemeral: KeyPair = generateKeyPair()): Initiator {
  const s = initSymmetricState(version);
  s.mixHash(serverPublic);
  s.mixHash(ephemeral.publicKey);
  const sealedMachine = s.encryptAndHash(s.mixDH(ephemeral.privateKey, serverPublic), machine.publicKey);
  const tag = s.encryptAndHash(s.mixDH(machine.privateKey, serverPublic), new Uint8Array(0));
  return {
    initiation: buildInitiation(version, ephemeral.publicKey, sealedMachine, tag),
    finish(response) {
      const msg = Buffer.from(response.buffer, response.byteOffset, response.length);
      if (msg[0] === msgTypeError && msg.length >= headerSize) {
        throw new HandshakeError(`server error: ${msg.subarray(headerSize, headerSize + msg.readUInt16BE(1)).toString('utf8')}`);
      }
      if (msg.length !== responseSize || msg[0] !== msgTypeResponse || msg.readUInt16BE(1) !== responsePayloadSize) {
        throw new HandshakeError('malformed handshake response');
      }
      const serverEphemeral = msg.subarray(headerSize, headerSize + keySize);
      s.mixHash(serverEphemeral);
      s.mixDH(ephemeral.privateKey, serverEphemeral); // ee
      s.decryptAndHash(s.mixDH(machine.privateKey, serverEphemeral), msg.subarray(headerSize + keySize)); // se
      const handshakeHash = s.handshakeHash();
      const [k1, k2] = s.split();
      return { txKey: k1, rxKey: k2, handshakeHash };
    },
  };
}
