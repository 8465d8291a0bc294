/**
 * The `tailplane` command line: finds the command named by the leading words, parses its flags, runs it,
 * and turns failures into a message and an exit code (1 error, 2 usage).
 */
import { ApiError } from '../client/admin-client.ts';
import { ConfigError } from '../config/config.ts';
import { BackupError } from '../store/backup.ts';
import { CliError, parseArgs, usage, UsageError } from './args.ts';
import { backupCommands } from './commands/backup.ts';
import { migrateCommands } from './commands/migrate.ts';
import { MigrateError } from '../store/postgres/migrate.ts';
import { StoreUnavailableError } from '../store/errors.ts';
import type { Command } from './commands/command.ts';
import { engineCommands } from './commands/engine.ts';
import { keyCommands } from './commands/keys.ts';
import { dnsCommands } from './commands/dns.ts';
import { nodeCommands } from './commands/nodes.ts';
import { oauthClientCommands } from './commands/oauth-clients.ts';
import { policyCommands } from './commands/policy.ts';
import { routeCommands } from './commands/routes.ts';
import { serverCommands } from './commands/server.ts';
import { sshCommands } from './commands/ssh.ts';
import { auditCommands } from './commands/audit.ts';
import { syncCommands } from './commands/sync.ts';
import { userCommands } from './commands/users.ts';
import { createContext, globalFlags } from './context.ts';

export const commands: Command[] = [...serverCommands, ...userCommands, ...nodeCommands, ...routeCommands, ...dnsCommands, ...keyCommands, ...oauthClientCommands, ...policyCommands, ...sshCommands, ...engineCommands, ...syncCommands, ...backupCommands, ...migrateCommands, ...auditCommands];

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

function find(words: string[]): { command: Command; rest: string[] } | undefined {
  const normalized = [groupAliases[words[0] ?? ''] ?? words[0], ...words.slice(1)];
  for (const command of commands) {
    for (const path of [command.path, ...(command.aliases ?? [])]) {
      if (path.every((w, i) => normalized[i] === w)) return { command, rest: words.slice(path.length) };
    }
  }
  return undefined;
}

function help(): string {
  const lines = commands.map((c) => `  ${c.path.join(' ').padEnd(26)} ${c.summary}`);
  return `tailplane — a self-hosted Tailscale control plane\n\nusage: tailplane COMMAND [flags]\n\n${lines.join('\n')}\n\nRun "tailplane COMMAND --help" for a command's flags.`;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    console.log(help());
    return 0;
  }
  const found = find(argv);
  if (!found) {
    console.error(`tailplane: unknown command "${argv.slice(0, 2).join(' ')}"\n\n${help()}`);
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
