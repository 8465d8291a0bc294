/** A handshake pool's worker thread (handshake-pool.ts): runs the responder handshake on each initiation posted to it. */
import { parentPort, workerData } from 'node:worker_threads';
import { HandshakeError, respond } from './handshake.ts';
import type { HandshakeReply, HandshakeRequest } from './handshake-pool.ts';
import type { KeyPair } from './primitives.ts';

const keyPair = workerData as KeyPair;
const port = parentPort!;

port.on('message', ({ id, init }: HandshakeRequest) => {
  let reply: HandshakeReply;
  try {
    reply = { id, result: respond(init, keyPair) };
  } catch (err) {
    reply = { id, error: (err as Error).message, handshakeError: err instanceof HandshakeError };
  }
  port.postMessage(reply);
});
port.postMessage('ready');
