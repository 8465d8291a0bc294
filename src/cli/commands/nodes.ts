/**
 * `tailplane nodes …`: the machines of the tailnet, their subnet routes, and
 * `nodes export`, the tailnet as a policy topology file.
 */
import type { ApiNode } from '../../domain/api.ts';
import type { Topology } from '../../policy/index.ts';
import { CliError, UsageError, type FlagSpecs } from '../args.ts';
import type { Context } from '../context.ts';
import { render, type Column } from '../output.ts';
import type { Command } from './command.ts';

const owner = (n: ApiNode) => (n.tags.length ? n.tags.join(',') : (n.user?.name ?? ''));

const nodeColumns: Column<ApiNode>[] = [
  { header: 'ID', value: (n) => n.id },
  { header: 'Hostname', value: (n) => n.name },
  { header: 'Name', value: (n) => n.givenName },
  { header: 'Owner', value: owner },
  { header: 'IP addresses', value: (n) => n.ipAddresses.join(', ') },
  { header: 'Ephemeral', value: (n) => n.ephemeral },
  // lastSeen is written when a node goes away; while it is connected, it is seen now.
  { header: 'Last seen', value: (n) => (n.online ? 'now' : n.lastSeen) },
  { header: 'Expiration', value: (n) => n.expiry },
  { header: 'Connected', value: (n) => (n.online ? 'online' : 'offline') },
  { header: 'Expired', value: (n) => n.expired },
];

const routeColumns: Column<ApiNode>[] = [
  { header: 'ID', value: (n) => n.id },
  { header: 'Hostname', value: (n) => n.givenName },
  { header: 'Approved', value: (n) => n.approvedRoutes },
  { header: 'Available', value: (n) => n.availableRoutes },
  { header: 'Serving', value: (n) => n.subnetRoutes },
];

const idFlag: FlagSpecs = { id: { alias: 'i', type: 'string', description: 'node id (or give the node name)' } };

async function listNodes(ctx: Context, user?: string): Promise<ApiNode[]> {
  const q = user ? `?user=${encodeURIComponent(user)}` : '';
  const { nodes } = await ctx.client().get<{ nodes: ApiNode[] }>(`/api/v1/node${q}`);
  // The same order on every run, whatever order the server keeps them in.
  return nodes.sort((a, b) => Number(a.id) - Number(b.id));
}

/** The node named by --id, or by a positional id, MagicDNS name or hostname. */
async function resolveNode(ctx: Context): Promise<ApiNode> {
  const ref = ctx.flag('id') ?? ctx.args.positionals[0];
  if (!ref) throw new UsageError('give the node as --id ID or by name');
  if (/^\d+$/.test(ref)) return (await ctx.client().get<{ node: ApiNode }>(`/api/v1/node/${ref}`)).node;
  const nodes = await listNodes(ctx);
  const node = nodes.find((n) => n.givenName === ref) ?? nodes.find((n) => n.name === ref);
  if (!node) throw new CliError(`node "${ref}" not found`);
  return node;
}

/** The positional argument after the node reference (when the node was given positionally). */
function argAfterNode(ctx: Context): string | undefined {
  return ctx.flag('id') ? ctx.args.positionals[0] : ctx.args.positionals[1];
}

const splitList = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);

function nodeResult(ctx: Context, node: ApiNode, done: string): string {
  return ctx.format === 'table' ? done : render(ctx.format, node, [], []);
}

/** The auth id, also when given as the whole login URL `tailscale up` printed (…/register/<id>). */
function authIdOf(value: string): string {
  if (!/^https?:\/\//.test(value)) return value;
  const id = new URL(value).pathname.split('/').filter(Boolean).pop();
  if (!id) throw new UsageError(`--auth-id ${value}: the URL has no auth id at its end`);
  return id;
}

export const nodeCommands: Command[] = [
  {
    path: ['nodes', 'list'],
    aliases: [['nodes', 'ls']],
    summary: 'List nodes',
    flags: { user: { alias: 'u', type: 'string', description: 'only nodes of this user' } },
    async run(ctx) {
      const nodes = await listNodes(ctx, ctx.flag('user'));
      return render(ctx.format, nodes, nodes, nodeColumns);
    },
  },
  {
    path: ['nodes', 'show'],
    summary: 'Show one node',
    positionals: 'NODE',
    flags: idFlag,
    async run(ctx) {
      const node = await resolveNode(ctx);
      return render(ctx.format === 'table' ? 'yaml' : ctx.format, node, [], []);
    },
  },
  {
    path: ['nodes', 'rename'],
    summary: 'Rename a node (its MagicDNS name)',
    positionals: 'NODE NEW_NAME',
    flags: idFlag,
    async run(ctx) {
      const node = await resolveNode(ctx);
      const newName = argAfterNode(ctx);
      if (!newName) throw new UsageError('usage: tailplane nodes rename NODE NEW_NAME');
      const res = await ctx.client().post<{ node: ApiNode }>(`/api/v1/node/${node.id}/rename/${encodeURIComponent(newName)}`);
      return nodeResult(ctx, res.node, `renamed node ${node.givenName} to ${res.node.givenName}`);
    },
  },
  {
    path: ['nodes', 'expire'],
    aliases: [['nodes', 'logout']],
    summary: 'Expire a node now, at a time (--expiry), or disable its expiry (--disable)',
    positionals: 'NODE',
    flags: {
      ...idFlag,
      expiry: { alias: 'e', type: 'string', description: 'RFC 3339 time to expire at (default now)' },
      disable: { alias: 'd', type: 'boolean', description: 'disable key expiry for this node' },
    },
    async run(ctx) {
      const node = await resolveNode(ctx);
      const body = ctx.bool('disable') ? { disableExpiry: true } : { expiry: ctx.flag('expiry') };
      const res = await ctx.client().post<{ node: ApiNode }>(`/api/v1/node/${node.id}/expire`, body);
      return nodeResult(ctx, res.node, `node ${node.givenName} expiry: ${res.node.expiry ?? 'never'}`);
    },
  },
  {
    path: ['nodes', 'delete'],
    summary: 'Delete a node',
    positionals: 'NODE',
    flags: idFlag,
    async run(ctx) {
      const node = await resolveNode(ctx);
      await ctx.client().delete(`/api/v1/node/${node.id}`);
      return ctx.format === 'table' ? `deleted node ${node.givenName}` : render(ctx.format, { deleted: node.id }, [], []);
    },
  },
  {
    path: ['nodes', 'tag'],
    aliases: [['nodes', 'tags']],
    summary: 'Set the tags of a node (tagging a user\'s node makes the tags its owner)',
    positionals: 'NODE',
    flags: { ...idFlag, tags: { alias: 't', type: 'string', description: 'comma-separated tags, e.g. tag:server,tag:db' } },
    async run(ctx) {
      const node = await resolveNode(ctx);
      const tags = splitList(ctx.flag('tags') ?? argAfterNode(ctx));
      const res = await ctx.client().post<{ node: ApiNode }>(`/api/v1/node/${node.id}/tags`, { tags });
      return nodeResult(ctx, res.node, `node ${node.givenName} tags: ${res.node.tags.join(',') || '-'}`);
    },
  },
  {
    path: ['nodes', 'approve-routes'],
    summary: 'Set the approved routes of a node ("" removes all)',
    positionals: 'NODE',
    flags: { ...idFlag, routes: { alias: 'r', type: 'string', description: 'comma-separated CIDR prefixes' } },
    async run(ctx) {
      const node = await resolveNode(ctx);
      const routes = splitList(ctx.flag('routes') ?? argAfterNode(ctx));
      await ctx.client().post(`/api/v1/node/${node.id}/approve_routes`, { routes });
      // Read back: the policy's autoApprovers approve advertised routes again as soon as they are removed.
      const after = (await ctx.client().get<{ node: ApiNode }>(`/api/v1/node/${node.id}`)).node;
      const kept = after.approvedRoutes.filter((r) => !routes.includes(r));
      const note = kept.length ? `\n${kept.join(', ')} stay approved: the policy's autoApprovers approve them (change autoApprovers to remove them)` : '';
      return nodeResult(ctx, after, `node ${node.givenName} approved routes: ${after.approvedRoutes.join(',') || '-'}${note}`);
    },
  },
  {
    path: ['nodes', 'list-routes'],
    summary: 'List advertised and approved routes per node',
    flags: idFlag,
    async run(ctx) {
      const nodes = ctx.flag('id') ? [await resolveNode(ctx)] : await listNodes(ctx);
      const routers = nodes.filter((n) => n.availableRoutes.length || n.approvedRoutes.length);
      return render(ctx.format, routers, routers, routeColumns);
    },
  },
  {
    path: ['nodes', 'export'],
    summary: 'Print the tailnet as the policy sees it (JSON), the topology file `policy compile` reads',
    async run(ctx) {
      const topology = await ctx.client().get<Topology>('/api/v1/topology');
      // The export is a file format (what `policy compile --topology` reads), so it is JSON whatever -o says.
      return render('json', topology, [], []);
    },
  },
  {
    path: ['nodes', 'register'],
    aliases: [['auth', 'register']],
    summary: 'Approve an interactive login (the auth id from `tailscale up`\'s URL) as a user',
    flags: {
      user: { alias: 'u', type: 'string', description: 'user name or id' },
      'auth-id': { type: 'string', description: 'the login URL tailscale up printed, or the id at its end' },
    },
    async run(ctx) {
      const body = { user: ctx.need('user'), authId: authIdOf(ctx.need('auth-id')) };
      const res = await ctx.client().post<{ node: ApiNode }>('/api/v1/auth/register', body);
      return nodeResult(ctx, res.node, `registered node ${res.node.givenName} for ${body.user}`);
    },
  },
];
