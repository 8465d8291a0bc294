/**
 * Continuous sync (GitOps): keeps a tailnet converged to a desired state in Git or a file. Sits above the engine
 * and talks to the server only through the admin API; `tailplane sync` and `tailplane serve` (config `sync.*`)
 * both start it from the same settings.
 */
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { AdminClient } from '../client/admin-client.ts';
import type { SyncMode, SyncSource } from './round.ts';
import { createSyncRunner, type SyncRunner } from './runner.ts';
import type { SyncObserver } from './observer.ts';
import { createWebhook } from './webhook.ts';

export { createSyncRunner, describeSource, leaderLease, type SyncRunner, type SyncStatus } from './runner.ts';
export { runRound, writeLease, type RoundOutcome, type SyncMode, type SyncSource } from './round.ts';
export { createWebhook, signBody, type SyncEventKind } from './webhook.ts';
export { redactUrl } from './git.ts';
export type { SyncObserver } from './observer.ts';

/** Sync settings as flags and config spell them; credentials come from the environment only. */
export interface SyncSettings {
  readonly git?: string;
  readonly ref?: string;
  /** The desired-state file inside the repository. */
  readonly path?: string;
  /** A local desired-state file, watched for changes (instead of git). */
  readonly file?: string;
  readonly interval?: string;
  readonly mode?: string;
  readonly webhookUrl?: string;
  readonly webhookSecret?: string;
  /** Where fetched commits are kept (default ~/.cache/tailplane/sync/<hash of the URL>). */
  readonly cacheDir?: string;
}

export class SyncSettingsError extends Error {}

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "1s", "30s", "1m", "2h" (and "500ms") as milliseconds, at least 100 ms. */
export function parseInterval(text: string): number {
  const m = /^([1-9][0-9]*)(ms|s|m|h)$/.exec(text.trim());
  const ms = m ? Number(m[1]) * units[m[2]!]! : NaN;
  if (!(ms >= 100)) throw new SyncSettingsError(`invalid sync interval "${text}": use a duration such as 30s, 1m or 1h`);
  return ms;
}

export function syncSource(s: SyncSettings, env: NodeJS.ProcessEnv = process.env): SyncSource {
  if (s.git && s.file) throw new SyncSettingsError('give either a Git repository (--git) or a file (-f), not both');
  if (s.file) return { kind: 'file', file: s.file };
  if (!s.git) throw new SyncSettingsError('nothing to sync from: give --git URL|PATH with --path, or -f FILE');
  if (!s.path) throw new SyncSettingsError('--git needs --path: the desired-state file inside the repository');
  const ref = s.ref || 'main';
  const cacheDir = s.cacheDir || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tailplane', 'sync', createHash('sha256').update(`${s.git}#${ref}`).digest('hex').slice(0, 16));
  return {
    kind: 'git',
    url: s.git,
    ref,
    path: s.path,
    cacheDir,
    token: env.TAILPLANE_SYNC_GIT_TOKEN || undefined,
    tokenUser: env.TAILPLANE_SYNC_GIT_USER || undefined,
    sshKey: env.TAILPLANE_SYNC_GIT_SSH_KEY || undefined,
  };
}

export function syncMode(mode = 'enforce'): SyncMode {
  if (mode !== 'enforce' && mode !== 'report') throw new SyncSettingsError(`unknown sync mode "${mode}": use enforce or report`);
  return mode;
}

/** Validates the settings and builds the runner (not started). */
export function createSync(client: AdminClient, s: SyncSettings, log?: (msg: string) => void, observer?: SyncObserver): SyncRunner {
  const source = syncSource(s);
  const mode = syncMode(s.mode);
  const intervalMs = parseInterval(s.interval || '1m');
  if (s.webhookUrl && !s.webhookSecret) throw new SyncSettingsError('a sync webhook needs a secret to sign with (TAILPLANE_SYNC_WEBHOOK_SECRET)');
  const webhook = s.webhookUrl ? createWebhook({ url: s.webhookUrl, secret: s.webhookSecret!, onError: log }) : undefined;
  return createSyncRunner({ client, source, mode, intervalMs, webhook, observer, log });
}
