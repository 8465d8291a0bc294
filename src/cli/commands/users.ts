/**
 * `tailplane users create|list|rename|delete`.
 */
import type { ApiUser } from '../../domain/api.ts';
import type { Context } from '../context.ts';
import { CliError, UsageError } from '../args.ts';
import { render, renderObject, type Column } from '../output.ts';
import type { Command } from './command.ts';

const columns: Column<ApiUser>[] = [
  { header: 'ID', value: (u) => u.id },
  { header: 'Name', value: (u) => u.name },
  { header: 'Display name', value: (u) => u.displayName },
  { header: 'Email', value: (u) => u.email },
  { header: 'Created', value: (u) => u.createdAt },
];

/** Finds a user by --id or --name (or a positional name). */
export async function resolveUser(ctx: Context, ref: string): Promise<ApiUser> {
  const { users } = await ctx.client().get<{ users: ApiUser[] }>('/api/v1/user');
  const user = users.find((u) => u.name === ref) ?? users.find((u) => u.id === ref);
  if (!user) throw new CliError(`user "${ref}" not found`);
  return user;
}

function userRef(ctx: Context): string {
  const ref = ctx.flag('id') ?? ctx.flag('name') ?? ctx.args.positionals[0];
  if (!ref) throw new UsageError('give the user as --name NAME, --id ID or a positional name');
  return ref;
}

export const userCommands: Command[] = [
  {
    path: ['users', 'create'],
    summary: 'Create a user',
    positionals: 'NAME',
    flags: {
      'display-name': { alias: 'd', type: 'string', description: 'display name' },
      email: { alias: 'e', type: 'string', description: 'e-mail address' },
    },
    async run(ctx) {
      const name = ctx.args.positionals[0];
      if (!name) throw new UsageError('usage: tailplane users create NAME');
      const body = { name, displayName: ctx.flag('display-name'), email: ctx.flag('email') };
      const { user } = await ctx.client().post<{ user: ApiUser }>('/api/v1/user', body);
      return ctx.format === 'table' ? `created user ${user.name} (id ${user.id})` : renderObject(ctx.format, user as never);
    },
  },
  {
    path: ['users', 'list'],
    aliases: [['users', 'ls']],
    summary: 'List users',
    flags: {
      id: { alias: 'i', type: 'string', description: 'only the user with this id' },
      name: { alias: 'n', type: 'string', description: 'only the user with this name' },
      email: { alias: 'e', type: 'string', description: 'only users with this e-mail' },
    },
    async run(ctx) {
      const q = new URLSearchParams();
      for (const f of ['id', 'name', 'email']) if (ctx.flag(f)) q.set(f, ctx.flag(f)!);
      const data = await ctx.client().get<{ users: ApiUser[] }>(`/api/v1/user${q.size ? `?${q}` : ''}`);
      return render(ctx.format, data.users, data.users, columns);
    },
  },
  {
    path: ['users', 'rename'],
    summary: 'Rename a user',
    positionals: 'OLD NEW | --name OLD --new-name NEW',
    flags: {
      id: { alias: 'i', type: 'string', description: 'user id' },
      name: { alias: 'n', type: 'string', description: 'current user name' },
      'new-name': { alias: 'r', type: 'string', description: 'new name' },
    },
    async run(ctx) {
      const user = await resolveUser(ctx, userRef(ctx));
      const newName = ctx.flag('new-name') ?? ctx.args.positionals.at(-1);
      if (!newName || newName === user.name) throw new UsageError('give the new name with --new-name NEW');
      const res = await ctx.client().post<{ user: ApiUser }>(
        `/api/v1/user/${user.id}/rename/${encodeURIComponent(newName)}`,
      );
      return ctx.format === 'table' ? `renamed user ${user.name} to ${res.user.name}` : renderObject(ctx.format, res.user as never);
    },
  },
  {
    path: ['users', 'delete'],
    aliases: [['users', 'destroy']],
    summary: 'Delete a user (refused while it owns nodes)',
    positionals: 'NAME',
    flags: {
      id: { alias: 'i', type: 'string', description: 'user id' },
      name: { alias: 'n', type: 'string', description: 'user name' },
    },
    async run(ctx) {
      const user = await resolveUser(ctx, userRef(ctx));
      await ctx.client().delete(`/api/v1/user/${user.id}`);
      return ctx.format === 'table' ? `deleted user ${user.name}` : renderObject(ctx.format, { deleted: user.id });
    },
  },
];
