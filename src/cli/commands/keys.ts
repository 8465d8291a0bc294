/**
 * `tailplane preauthkeys …` and `tailplane apikeys …`.
 */
import { isRole, roleSummaries, roles } from '../../domain/roles.ts';
import { parseTimeOrDuration, timeHint } from '../../domain/time.ts';
import type { ApiApiKey, ApiPreAuthKey } from '../../domain/api.ts';
import { UsageError } from '../args.ts';
import type { Context } from '../context.ts';
import { render, renderObject, type Column } from '../output.ts';
import type { Command } from './command.ts';
import { resolveUser } from './users.ts';

const preAuthColumns: Column<ApiPreAuthKey>[] = [
  { header: 'ID', value: (k) => k.id },
  { header: 'Key', value: (k) => k.key },
  { header: 'Reusable', value: (k) => k.reusable },
  { header: 'Ephemeral', value: (k) => k.ephemeral },
  { header: 'Used', value: (k) => k.used },
  { header: 'Expiration', value: (k) => k.expiration },
  { header: 'Created', value: (k) => k.createdAt },
  { header: 'Owner', value: (k) => (k.aclTags.length ? k.aclTags.join(',') : k.user?.name) },
];

const apiKeyColumns: Column<ApiApiKey>[] = [
  { header: 'ID', value: (k) => k.id },
  { header: 'Prefix', value: (k) => k.prefix },
  { header: 'Role', value: (k) => k.role },
  { header: 'Expiration', value: (k) => k.expiration },
  { header: 'Created', value: (k) => k.createdAt },
  { header: 'Last seen', value: (k) => k.lastSeen },
];

/** Turns "90d", "12h", "30m" or an RFC 3339 time with a zone into an RFC 3339 time; undefined stays undefined. */
export function expirationFrom(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const at = parseTimeOrDuration(value, new Date());
  if (!at) throw new UsageError(`invalid expiration ${JSON.stringify(value)}: use ${timeHint}`);
  return at.toISOString();
}

function idOf(ctx: Context): string {
  const id = ctx.flag('id') ?? ctx.args.positionals[0];
  if (!id) throw new UsageError('give the key as --id ID');
  if (!/^\d{1,15}$/.test(id)) throw new UsageError(`key id must be a number, not "${id}" (see the ID column of "preauthkeys list")`);
  return id;
}

export const keyCommands: Command[] = [
  {
    path: ['preauthkeys', 'create'],
    summary: 'Create a pre-auth key for a user or for tags (the key is printed once)',
    flags: {
      user: { alias: 'u', type: 'string', description: 'owner user (name or id); omit for a tags-only key' },
      reusable: { type: 'boolean', description: 'can register more than one node' },
      ephemeral: { type: 'boolean', description: 'nodes are deleted when they go away' },
      expiration: { alias: 'e', type: 'string', description: 'lifetime (1h default; e.g. 90d) or RFC 3339 time' },
      tags: { alias: 't', type: 'string', description: 'comma-separated tags the nodes get, e.g. tag:ci' },
    },
    async run(ctx) {
      const user = ctx.flag('user');
      const body = {
        user: user ? (await resolveUser(ctx, user)).id : undefined,
        reusable: ctx.bool('reusable'),
        ephemeral: ctx.bool('ephemeral'),
        expiration: expirationFrom(ctx.flag('expiration') ?? '1h'),
        aclTags: (ctx.flag('tags') ?? '').split(',').filter(Boolean),
      };
      const { preAuthKey } = await ctx.client().post<{ preAuthKey: ApiPreAuthKey }>('/api/v1/preauthkey', body);
      return ctx.format === 'table' ? preAuthKey.key : renderObject(ctx.format, preAuthKey as never);
    },
  },
  {
    path: ['preauthkeys', 'list'],
    aliases: [['preauthkeys', 'ls']],
    summary: 'List pre-auth keys',
    flags: { user: { alias: 'u', type: 'string', description: 'only keys of this user' } },
    async run(ctx) {
      const user = ctx.flag('user');
      const q = user ? `?user=${(await resolveUser(ctx, user)).id}` : '';
      const { preAuthKeys } = await ctx.client().get<{ preAuthKeys: ApiPreAuthKey[] }>(`/api/v1/preauthkey${q}`);
      return render(ctx.format, preAuthKeys, preAuthKeys, preAuthColumns);
    },
  },
  {
    path: ['preauthkeys', 'expire'],
    aliases: [['preauthkeys', 'revoke']],
    summary: 'Expire a pre-auth key now',
    flags: { id: { alias: 'i', type: 'string', description: 'key id' } },
    async run(ctx) {
      const id = idOf(ctx);
      await ctx.client().post('/api/v1/preauthkey/expire', { id });
      return ctx.format === 'table' ? `expired pre-auth key ${id}` : renderObject(ctx.format, { expired: id });
    },
  },
  {
    path: ['preauthkeys', 'delete'],
    summary: 'Delete a pre-auth key',
    flags: { id: { alias: 'i', type: 'string', description: 'key id' } },
    async run(ctx) {
      const id = idOf(ctx);
      await ctx.client().delete(`/api/v1/preauthkey?id=${encodeURIComponent(id)}`);
      return ctx.format === 'table' ? `deleted pre-auth key ${id}` : renderObject(ctx.format, { deleted: id });
    },
  },
  {
    path: ['apikeys', 'create'],
    summary: 'Create an admin API key (printed once)',
    flags: {
      expiration: { alias: 'e', type: 'string', description: 'lifetime (90d default) or RFC 3339 time' },
      role: { alias: 'r', type: 'string', description: `what it may change: ${roles.map((r) => `${r} (${roleSummaries[r]})`).join(', ')}; default admin` },
    },
    async run(ctx) {
      const role = ctx.flag('role');
      if (role !== undefined && !isRole(role)) throw new UsageError(`invalid role "${role}": use one of ${roles.join(', ')}`);
      const body = { expiration: expirationFrom(ctx.flag('expiration') ?? '90d'), ...(role ? { role } : {}) };
      const { apiKey } = await ctx.client().post<{ apiKey: string }>('/api/v1/apikey', body);
      return ctx.format === 'table' ? apiKey : renderObject(ctx.format, { apiKey });
    },
  },
  {
    path: ['apikeys', 'list'],
    aliases: [['apikeys', 'ls']],
    summary: 'List admin API keys',
    async run(ctx) {
      const { apiKeys } = await ctx.client().get<{ apiKeys: ApiApiKey[] }>('/api/v1/apikey');
      return render(ctx.format, apiKeys, apiKeys, apiKeyColumns);
    },
  },
  {
    path: ['apikeys', 'expire'],
    aliases: [['apikeys', 'revoke']],
    summary: 'Expire (revoke) an admin API key',
    flags: {
      prefix: { alias: 'p', type: 'string', description: 'key prefix' },
      id: { alias: 'i', type: 'string', description: 'key id' },
    },
    async run(ctx) {
      const ref = ctx.flag('id') ? { id: ctx.flag('id') } : { prefix: ctx.need('prefix') };
      await ctx.client().post('/api/v1/apikey/expire', ref);
      return ctx.format === 'table' ? 'expired API key' : renderObject(ctx.format, { expired: ref });
    },
  },
  {
    path: ['apikeys', 'delete'],
    summary: 'Delete an admin API key',
    flags: {
      prefix: { alias: 'p', type: 'string', description: 'key prefix' },
      id: { alias: 'i', type: 'string', description: 'key id' },
    },
    async run(ctx) {
      const id = ctx.flag('id');
      const path = id ? `/api/v1/apikey/-?id=${encodeURIComponent(id)}` : `/api/v1/apikey/${encodeURIComponent(ctx.need('prefix'))}`;
      await ctx.client().delete(path);
      return ctx.format === 'table' ? 'deleted API key' : renderObject(ctx.format, { deleted: id ?? ctx.flag('prefix') });
    },
  },
];
