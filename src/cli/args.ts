/**
 * A small command-line parser: declared flags only (an unknown flag is an error), `--flag value`,
 * `--flag=value`, short aliases, booleans, and positionals.
 */

export interface FlagSpec {
  readonly alias?: string;
  readonly type: 'string' | 'boolean';
  readonly description: string;
  /** A string flag that may be given several times; the values are joined with ';'. */
  readonly repeatable?: boolean;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

export interface Parsed {
  readonly flags: Record<string, string | boolean | undefined>;
  readonly positionals: string[];
}

/** The command line itself is wrong (unknown flag, missing argument, malformed value): exit 2. */
export class UsageError extends Error {}

/** The command was well formed but failed (a user or node not found, a file that cannot be read): exit 1. */
export class CliError extends Error {}

export function parseArgs(argv: string[], specs: FlagSpecs): Parsed {
  const flags: Record<string, string | boolean | undefined> = {};
  const positionals: string[] = [];
  const byAlias = new Map(Object.entries(specs).flatMap(([name, s]) => (s.alias ? [[s.alias, name]] : [])));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    const m = /^(--?)([^=]+)(?:=(.*))?$/.exec(arg);
    if (!m || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const name = m[1] === '--' ? m[2]! : byAlias.get(m[2]!);
    const spec = name ? specs[name] : undefined;
    if (!name || !spec) throw new UsageError(`unknown flag ${arg}`);
    if (spec.type === 'boolean') {
      flags[name] = m[3] === undefined ? true : m[3] !== 'false';
      continue;
    }
    const value = m[3] ?? argv[++i];
    if (value === undefined) throw new UsageError(`flag ${arg} needs a value`);
    const before = flags[name];
    flags[name] = spec.repeatable && typeof before === 'string' ? `${before};${value}` : value;
  }
  return { flags, positionals };
}

export function usage(command: string, specs: FlagSpecs): string {
  const lines = Object.entries(specs).map(([name, s]) => {
    const flag = `${s.alias ? `-${s.alias}, ` : '    '}--${name}${s.type === 'string' ? ' VALUE' : ''}`;
    return `  ${flag.padEnd(30)} ${s.description}`;
  });
  return `usage: tailplane ${command}\n${lines.join('\n')}`;
}
