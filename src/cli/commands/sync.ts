/**
 * `tailplane sync` (a long-running GitOps loop, or one round with --once) and `tailplane sync status`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { ApiError } from '../../client/admin-client.ts';
import { tailnetApi } from '../../client/tailnet-api.ts';
import { parseHostPort } from '../../config/config.ts';
import { listenMetrics, processRegistry } from '../../metrics/metrics.ts';
import { syncMetrics } from '../../metrics/sync.ts';
import { createSync, SyncSettingsError, type SyncStatus } from '../../sync/index.ts';
import { CliError, UsageError } from '../args.ts';
import type { Context } from '../context.ts';
import { renderObject } from '../output.ts';
import type { Command } from './command.ts';

/** The webhook secret from a file (--webhook-secret-file) or TAILPLANE_SYNC_WEBHOOK_SECRET, never a flag's value. */
function webhookSecret(ctx: Context): string | undefined {
  const file = ctx.flag('webhook-secret-file');
  if (!file) return process.env.TAILPLANE_SYNC_WEBHOOK_SECRET || undefined;
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`cannot read the webhook secret: ${(err as Error).message}`);
  }
}

/** --metrics-listen, checked: a host:port, and only for the long-running loop. */
function metricsListen(ctx: Context): string | undefined {
  const addr = ctx.flag('metrics-listen');
  if (addr === undefined) return undefined;
  if (!parseHostPort(addr)) throw new UsageError(`invalid --metrics-listen "${addr}": expected host:port, e.g. 127.0.0.1:9091`);
  if (ctx.bool('once')) throw new UsageError('--metrics-listen is for the long-running sync; --once exits after one round');
  return addr;
}

const exitOf = { 'in-sync': 0, applied: 0, drift: 2, failed: 1 } as const;

function summary(s: Record<string, unknown> | SyncStatus | null): Record<string, unknown> {
  const st = s as Partial<SyncStatus> | null;
  const r = st?.lastRound;
  return {
    mode: st?.mode,
    source: st?.source,
    lastRound: r?.finishedAt,
    revision: r?.revision,
    result: r?.result,
    drift: r?.drift.map((d) => d.address),
    error: r?.error?.message,
    lastGood: st?.lastGood?.revision,
    nextRound: st?.nextRoundAt,
  };
}

export const syncCommands: Command[] = [
  {
    path: ['sync', 'status'],
    summary: 'Show the last continuous-sync round: time, commit, result, drift, next round',
    async run(ctx) {
      const res = await tailnetApi(ctx.client()).getSync();
      if (ctx.format !== 'table') return renderObject(ctx.format, res);
      if (!res.status) return res.leader ? `sync leader ${res.leader.holder}: no round reported yet` : 'no sync process reports to this server';
      return renderObject('table', { leader: res.leader?.holder, ...summary(res.status) });
    },
  },
  {
    path: ['sync'],
    door: 'sync',
    summary: 'Keep the tailnet converged to a desired state in Git (--git) or a file (-f), every --interval',
    flags: {
      git: { type: 'string', description: 'Git repository URL or path (credentials: TAILPLANE_SYNC_GIT_TOKEN or _SSH_KEY)' },
      ref: { type: 'string', description: 'branch, tag or commit to follow (default main)' },
      path: { type: 'string', description: 'the desired-state file inside the repository' },
      file: { alias: 'f', type: 'string', description: 'a local desired-state file, watched for changes (instead of --git)' },
      interval: { type: 'string', description: 'time between rounds: 30s, 1m (default), 1h' },
      mode: { type: 'string', description: 'enforce (default: apply the desired state) or report (only report drift)' },
      'webhook-url': { type: 'string', description: 'POST signed drift/failure/recovery events here' },
      'webhook-secret-file': { type: 'string', description: 'HMAC secret for the webhook (or TAILPLANE_SYNC_WEBHOOK_SECRET)' },
      'cache-dir': { type: 'string', description: 'where fetched commits are kept (default ~/.cache/tailplane/sync/…)' },
      once: { type: 'boolean', description: 'run one round and exit (0 in sync or applied, 2 drift reported, 1 failed)' },
      'metrics-listen': { type: 'string', description: 'serve Prometheus /metrics of the rounds on host:port, e.g. 127.0.0.1:9091' },
    },
    async run(ctx) {
      const log = (msg: string) => console.error(`${new Date().toISOString()} ${msg}`);
      // A file that is not there yet is a typo, not a failed round: say so once, as every command does.
      const file = ctx.flag('file');
      if (file !== undefined && !existsSync(file)) throw new CliError(`cannot read ${file}: no such file`);
      const metricsAddr = metricsListen(ctx);
      const registry = metricsAddr ? processRegistry() : undefined;
      let runner;
      try {
        runner = createSync(
          ctx.client(),
          {
            git: ctx.flag('git'),
            ref: ctx.flag('ref'),
            path: ctx.flag('path'),
            file: ctx.flag('file'),
            interval: ctx.flag('interval'),
            mode: ctx.flag('mode'),
            webhookUrl: ctx.flag('webhook-url'),
            webhookSecret: webhookSecret(ctx),
            cacheDir: ctx.flag('cache-dir'),
          },
          log,
          registry && syncMetrics(registry),
        );
      } catch (err) {
        throw err instanceof SyncSettingsError ? new UsageError(err.message) : err;
      }
      if (ctx.bool('once')) {
        const status = await runner.once();
        await runner.stop();
        const r = status.lastRound;
        if (!r) throw new ApiError(409, 'another sync process leads this tailnet; no round was run');
        process.exitCode = exitOf[r.result];
        return ctx.format === 'table' ? (r.error?.message ?? r.markdown) : renderObject(ctx.format, status as unknown as Record<string, unknown>);
      }
      // Bound before the first round: a sync nobody can scrape would fail unseen.
      const metrics = registry && (await listenMetrics(registry, metricsAddr!, 'Give --metrics-listen a free host:port.'));
      if (metrics) log(`sync: metrics on ${metrics.url}`);
      runner.start();
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await runner.stop();
      await metrics?.close();
    },
  },
];
