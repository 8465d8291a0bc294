/**
 * `tailplane backup` and `restore`. Backup asks the running server for an online copy (POST /api/v1/backup,
 * an admin key), so it works wherever the CLI reaches the API; restore works on a data dir on this machine,
 * with the server stopped.
 */
import { chmodSync, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../args.ts';
import { checkBackup, restoreBackup } from '../../store/backup.ts';
import { renderObject } from '../output.ts';
import type { Command } from './command.ts';

export const backupCommands: Command[] = [
  {
    path: ['backup'],
    summary: 'Write an online, consistent copy of the running server\'s database to a file',
    flags: {
      to: { type: 'string', description: 'file to write (mode 0600)' },
      force: { type: 'boolean', description: 'replace the file if it exists' },
    },
    async run(ctx) {
      const to = resolve(ctx.need('to'));
      if (existsSync(to) && !ctx.bool('force')) throw new UsageError(`${to} exists; pass --force to replace it`);
      // Downloaded beside the target and checked before it takes the name: a cut-off transfer is never a "backup".
      const partial = `${to}.partial`;
      rmSync(partial, { force: true });
      try {
        await ctx.client().download('/api/v1/backup', partial);
        const info = checkBackup(partial);
        renameSync(partial, to);
        chmodSync(to, 0o600);
        const result = { file: to, bytes: statSync(to).size, ...info };
        return ctx.format === 'table'
          ? `backup written to ${to} (${result.bytes} bytes, schema ${info.schemaVersion}, ${info.users} users, ${info.nodes} nodes, integrity ok)`
          : renderObject(ctx.format, result);
      } catch (err) {
        rmSync(partial, { force: true });
        throw err;
      }
    },
  },
  {
    path: ['restore'],
    summary: 'Check a backup and install it as a stopped server\'s database',
    flags: {
      from: { type: 'string', description: 'backup file written by "tailplane backup"' },
      'data-dir': { type: 'string', description: 'data folder of the server to restore (created 0700 if missing)' },
      force: { type: 'boolean', description: 'replace a database already in the data folder' },
    },
    async run(ctx) {
      const from = resolve(ctx.need('from'));
      const dir = resolve(ctx.need('data-dir'));
      const info = restoreBackup(from, dir, ctx.bool('force'));
      return ctx.format === 'table'
        ? `restored ${from} into ${info.path} (schema ${info.schemaVersion}, ${info.users} users, ${info.nodes} nodes); start it with: tailplane serve --data-dir ${dir}`
        : renderObject(ctx.format, { from, ...info });
    },
  },
];
