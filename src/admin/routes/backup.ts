/**
 * POST /api/v1/backup: an online, consistent copy of the database, streamed to the caller (admin role only:
 * it holds every hashed secret). The server writes the copy with SQLite's backup API while it keeps serving.
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

export function backupRoutes(app: FastifyInstance, backup: () => Promise<string>): void {
  app.post('/api/v1/backup', { schema: { summary: 'Stream an online, consistent copy of the database (SQLite file)' } }, async (_req, reply) => {
    const path = await backup();
    const file = createReadStream(path);
    // Removed once sent or abandoned: the copy holds secret hashes and must not pile up in the data dir.
    file.once('close', () => void rm(path, { force: true }));
    reply.type('application/vnd.sqlite3').header('content-disposition', 'attachment; filename="tailplane-backup.sqlite"');
    return reply.send(file);
  });
}
