/**
 * The shape of a CLI command: its words ("nodes list"), aliases, flags, and a run function that returns the
 * text to print.
 */
import type { FlagSpecs } from '../args.ts';
import type { Context } from '../context.ts';

export interface Command {
  /** Words after `tailplane`, e.g. ["nodes", "list"]. */
  readonly path: readonly string[];
  readonly aliases?: readonly (readonly string[])[];
  readonly summary: string;
  readonly flags?: FlagSpecs;
  /** Names of positional arguments, for help text. */
  readonly positionals?: string;
  /** Exit code of a usage error, 2 unless the command gives 2 another meaning (plan and drift: "changes"). */
  readonly usageExitCode?: number;
  /** How the audit log names this tool's changes (X-Tailplane-Door); `cli` unless the command is another tool's. */
  readonly door?: 'engine' | 'sync';
  run(ctx: Context): Promise<string | void>;
}
