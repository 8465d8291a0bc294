/**
 * Tells the audit log who is calling the admin HTTP server: each request runs in its own audit context (door from
 * the path, or for API v1 the X-Tailplane-Door header the CLI, engine, Terraform provider and sync send; the
 * caller's address), and the authentication hooks name the actor once the credentials are known.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Door } from '../audit/chain.ts';
import { runAs, type Actor } from '../audit/context.ts';

/** Tools that reach the server through API v1 and say so. */
const toolDoors = new Set<Door>(['cli', 'engine', 'terraform', 'sync']);

function doorOf(req: FastifyRequest): Door {
  if (req.url.startsWith('/api/v2/')) return 'api-v2';
  if (req.url.startsWith('/admin')) return 'console';
  if (req.url.startsWith('/oidc/')) return 'oidc';
  const said = req.headers['x-tailplane-door'];
  return typeof said === 'string' && toolDoors.has(said as Door) ? (said as Door) : 'api-v1';
}

export function auditDoor(app: FastifyInstance): void {
  const actors = new WeakMap<FastifyRequest, Actor>();
  app.addHook('onRequest', (req, _reply, done) => {
    const actor: Actor = { actor: 'anonymous', door: doorOf(req), source: req.ip };
    actors.set(req, actor);
    runAs(actor, done);
  });
  // Reading the body leaves the request's async context; the rest of the request runs in it again.
  app.addHook('preValidation', (req, _reply, done) => {
    const actor = actors.get(req);
    if (actor) runAs(actor, done);
    else done();
  });
}
