/**
 * What every CLI command gets: the parsed flags, the output format, and an admin API client built from
 * --url/--api-key, TAILPLANE_URL/TAILPLANE_API_KEY, a CLI config file, or the local server's bootstrap key.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { createAdminClient, type AdminClient } from '../client/admin-client.ts';
import { CliError, UsageError, type FlagSpecs, type Parsed } from './args.ts';
import { parseFormat, type Format } from './output.ts';

export const globalFlags: FlagSpecs = {
  url: { type: 'string', description: 'server URL (env TAILPLANE_URL; default http://127.0.0.1:8080)' },
  'api-key': { type: 'string', description: 'admin API key (env TAILPLANE_API_KEY)' },
  'cli-config': { type: 'string', description: 'CLI config file with url and api_key (default ~/.config/tailplane/cli.yaml)' },
  output: { alias: 'o', type: 'string', description: 'output format: table (default), json or yaml' },
  help: { alias: 'h', type: 'boolean', description: 'show help for the command' },
};

export interface Context {
  readonly args: Parsed;
  readonly format: Format;
  client(): AdminClient;
  flag(name: string): string | undefined;
  /** A flag that must be given; a clear usage error otherwise. */
  need(name: string): string;
  bool(name: string): boolean;
}

interface CliFileConfig {
  url?: string;
  api_key?: string;
}

function readCliConfig(path: string | undefined): CliFileConfig {
  const file = path ?? join(homedir(), '.config', 'tailplane', 'cli.yaml');
  if (!existsSync(file)) {
    if (path) throw new CliError(`CLI config file ${path} not found`);
    return {};
  }
  return (YAML.parse(readFileSync(file, 'utf8')) ?? {}) as CliFileConfig;
}

function resolveApiKey(explicit: string | undefined, fileConfig: CliFileConfig): string {
  const key = explicit ?? process.env.TAILPLANE_API_KEY ?? fileConfig.api_key;
  if (key) return key;
  // A server started in this folder with its defaults keeps its first admin key here.
  const local = join(process.env.TAILPLANE_DATA_DIR ?? 'data', 'admin-api-key');
  if (existsSync(local)) return readFileSync(local, 'utf8').trim();
  throw new UsageError('no API key: pass --api-key, set TAILPLANE_API_KEY, or run next to the server\'s data folder');
}

export function createContext(args: Parsed, door = 'cli'): Context {
  let client: AdminClient | undefined;
  const flag = (name: string) => {
    const v = args.flags[name];
    return typeof v === 'string' ? v : undefined;
  };
  return {
    args,
    format: parseFormat(args.flags.output),
    flag,
    need(name) {
      const v = flag(name);
      if (v === undefined || v === '') throw new UsageError(`missing required flag --${name}`);
      return v;
    },
    bool: (name) => args.flags[name] === true,
    client() {
      if (!client) {
        const fileConfig = readCliConfig(flag('cli-config'));
        const url = flag('url') ?? process.env.TAILPLANE_URL ?? fileConfig.url ?? 'http://127.0.0.1:8080';
        client = createAdminClient({ url, apiKey: resolveApiKey(flag('api-key'), fileConfig), door });
      }
      return client;
    },
  };
}
