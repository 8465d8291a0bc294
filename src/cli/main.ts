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

/**
 * Each command module with the first words of its commands and aliases. A command loads its own module only:
 * `nodes list` or `version` no longer load the server (0.53 -> 0.24 s), nor `serve` the engine and the policy
 * tools (a tenth of its start-up CPU). Help loads them all, in this order.
 */
const modules: readonly { readonly words: readonly string[]; readonly load: () => Promise<Command[]> }[] = [
  { words: ['serve', 'health', 'version'], load: () => import('./commands/server.ts').then((m) => m.serverCommands) },
  { words: ['users'], load: () => import('./commands/users.ts').then((m) => m.userCommands) },
  { words: ['nodes', 'auth'], load: () => import('./commands/nodes.ts').then((m) => m.nodeCommands) },
  { words: ['routes'], load: () => import('./commands/routes.ts').then((m) => m.routeCommands) },
  { words: ['dns'], load: () => import('./commands/dns.ts').then((m) => m.dnsCommands) },
  { words: ['preauthkeys', 'apikeys'], load: () => import('./commands/keys.ts').then((m) => m.keyCommands) },
  { words: ['oauth-clients'], load: () => import('./commands/oauth-clients.ts').then((m) => m.oauthClientCommands) },
  { words: ['policy'], load: () => import('./commands/policy.ts').then((m) => m.policyCommands) },
  { words: ['ssh'], load: () => import('./commands/ssh.ts').then((m) => m.sshCommands) },
  { words: ['plan', 'apply', 'drift'], load: () => import('./commands/engine.ts').then((m) => m.engineCommands) },
  { words: ['sync'], load: () => import('./commands/sync.ts').then((m) => m.syncCommands) },
  { words: ['backup', 'restore'], load: () => import('./commands/backup.ts').then((m) => m.backupCommands) },
  { words: ['migrate'], load: () => import('./commands/migrate.ts').then((m) => m.migrateCommands) },
  { words: ['audit'], load: () => import('./commands/audit.ts').then((m) => m.auditCommands) },
];

/** Every command, for help (and tests that must cover each one). */
export async function allCommands(): Promise<Command[]> {
  return (await Promise.all(modules.map((m) => m.load()))).flat();
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
  const module = modules.find((m) => m.words.includes(normalized[0] ?? ''));
  for (const command of (await module?.load()) ?? []) {
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
