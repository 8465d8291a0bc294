/**
 * The `tailplane` command line: finds the command named by the leading words, parses its flags, runs it,
 * and turns failures into a message and an exit code (1 error, 2 usage).
 */
import { ApiError } from '../client/admin-client.ts';
import { ConfigError } from '../config/config.ts';
import { BackupError, MigrateError, StoreUnavailableError } from '../store/errors.ts';
import { CliError, parseArgs, usage, UsageError } from './args.ts';
import type { Command } from './commands/command.ts';
import { createContext, globalFlags } from './context.ts';

type Loader = () => Promise<Command[]>;
const server: Loader = () => import('./commands/server.ts').then((m) => m.serverCommands);
const engine: Loader = () => import('./commands/engine.ts').then((m) => m.engineCommands);
const backup: Loader = () => import('./commands/backup.ts').then((m) => m.backupCommands);
const nodes: Loader = () => import('./commands/nodes.ts').then((m) => m.nodeCommands);
const keys: Loader = () => import('./commands/keys.ts').then((m) => m.keyCommands);

/**
 * The module of each command, by the first word of the command or of an alias. A command loads its own module
 * only: `nodes list` or `version` no longer load the server (0.53 -> 0.24 s), nor `serve` the engine and the
 * policy tools (a tenth of its start-up CPU). Help loads them all, in this order.
 */
const modules: Record<string, Loader> = {
  serve: server,
  health: server,
  version: server,
  users: () => import('./commands/users.ts').then((m) => m.userCommands),
  nodes,
  auth: nodes,
  routes: () => import('./commands/routes.ts').then((m) => m.routeCommands),
  dns: () => import('./commands/dns.ts').then((m) => m.dnsCommands),
  preauthkeys: keys,
  apikeys: keys,
  'oauth-clients': () => import('./commands/oauth-clients.ts').then((m) => m.oauthClientCommands),
  policy: () => import('./commands/policy.ts').then((m) => m.policyCommands),
  ssh: () => import('./commands/ssh.ts').then((m) => m.sshCommands),
  plan: engine,
  apply: engine,
  drift: engine,
  sync: () => import('./commands/sync.ts').then((m) => m.syncCommands),
  backup,
  restore: backup,
  migrate: () => import('./commands/migrate.ts').then((m) => m.migrateCommands),
  audit: () => import('./commands/audit.ts').then((m) => m.auditCommands),
};

/** Every command, for help (and tests that must cover each one). */
export async function allCommands(): Promise<Command[]> {
  const groups = await Promise.all([...new Set(Object.values(modules))].map((load) => load()));
  return groups.flat();
}

/** Singular and short forms people type out of habit (headscale accepts them too). */
const groupAliases: Record<string, string> = {
  user: 'users',
  node: 'nodes',
  route: 'routes',
  preauthkey: 'preauthkeys',
  authkey: 'preauthkeys',
  apikey: 'apikeys',
  'oauth-client': 'oauth-clients',
};

/** The command the leading words name, from the module of the first word (undefined: no such command). */
export async function find(words: string[]): Promise<{ command: Command; rest: string[] } | undefined> {
  const normalized = [groupAliases[words[0] ?? ''] ?? words[0], ...words.slice(1)];
  const load = Object.hasOwn(modules, normalized[0] ?? '') ? modules[normalized[0]!] : undefined;
  for (const command of (await load?.()) ?? []) {
    for (const path of [command.path, ...(command.aliases ?? [])]) {
      if (path.every((w, i) => normalized[i] === w)) return { command, rest: words.slice(path.length) };
    }
  }
  return undefined;
}

async function help(): Promise<string> {
  const lines = (await allCommands()).map((c) => `  ${c.path.join(' ').padEnd(26)} ${c.summary}`);
  return `tailplane — a self-hosted Tailscale control plane\n\nusage: tailplane COMMAND [flags]\n\n${lines.join('\n')}\n\nRun "tailplane COMMAND --help" for a command's flags.`;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    console.log(await help());
    return 0;
  }
  const found = await find(argv);
  if (!found) {
    console.error(`tailplane: unknown command "${argv.slice(0, 2).join(' ')}"\n\n${await help()}`);
    return 2;
  }
  const { command, rest } = found;
  const specs = { ...globalFlags, ...command.flags };
  try {
    const args = parseArgs(rest, specs);
    if (args.flags.help) {
      console.log(usage(`${command.path.join(' ')} ${command.positionals ?? ''} [flags]`, specs));
      return 0;
    }
    const ctx = createContext(args, command.door ?? 'cli');
    const out = await command.run(ctx);
    if (out !== undefined) console.log(out);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return report(err, argv.includes('json') || argv.includes('-ojson'), command.usageExitCode ?? 2);
  }
}

function report(err: unknown, json: boolean, usageExitCode: number): number {
  const message = (err as Error).message;
  if (json) console.log(JSON.stringify({ error: message }));
  else console.error(`tailplane: ${message}`);
  if (err instanceof UsageError) return usageExitCode;
  // Refusals the user fixes (a bad backup file, a busy data dir): a message, no stack trace.
  if (err instanceof ApiError || err instanceof ConfigError || err instanceof CliError || err instanceof BackupError || err instanceof MigrateError || err instanceof StoreUnavailableError) return 1;
  console.error((err as Error).stack);
  return 1;
}
