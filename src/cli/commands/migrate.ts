/**
 * `tailplane migrate --from sqlite:PATH --to postgres://…`: moves a stopped server's tailnet from its SQLite
 * database (the file, or the data dir holding it) into a new, empty PostgreSQL database.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../args.ts';
import { migrateSqliteToPostgres } from '../../store/postgres/migrate.ts';
import { databaseFileName } from '../../store/sqlite.ts';
import { renderObject } from '../output.ts';
import type { Command } from './command.ts';

export const migrateCommands: Command[] = [
  {
    path: ['migrate'],
    summary: 'Copy a stopped server\'s SQLite tailnet into an empty PostgreSQL database',
    flags: {
      from: { type: 'string', description: 'sqlite:PATH (the database file or the data dir holding it)' },
      to: { type: 'string', description: 'postgres://user@host:port/database (or postgres:postgres://…); a new, empty database' },
    },
    async run(ctx) {
      const from = ctx.need('from');
      const to = ctx.need('to').replace(/^postgres:(?=postgres(ql)?:\/\/)/, '');
      if (!from.startsWith('sqlite:') || from.length === 'sqlite:'.length) throw new UsageError(`--from must be sqlite:PATH, got ${JSON.stringify(from)}`);
      if (!/^postgres(ql)?:\/\/[^/]/.test(to)) throw new UsageError('--to must be a postgres://user@host:port/database URL');
      let path = resolve(from.slice('sqlite:'.length));
      if (existsSync(path) && statSync(path).isDirectory()) path = join(path, databaseFileName);
      const counts = await migrateSqliteToPostgres(path, to);
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      return ctx.format === 'table'
        ? `migrated ${path} to PostgreSQL: ${total} rows (${Object.entries(counts).map(([t, n]) => `${t} ${n}`).join(', ')}), counts verified; start the server with store.type: postgres`
        : renderObject(ctx.format, { from: path, tables: counts });
    },
  },
];
