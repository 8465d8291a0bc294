/**
 * `tailplane serve`, `health` and `version`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import type { Registry } from 'prom-client';
import { ConfigError, loadConfig, type Config } from '../../config/config.ts';
import type { SyncRunner } from '../../sync/index.ts';
import { version } from '../../version.ts';
import { renderObject } from '../output.ts';
import type { Command } from './command.ts';

/**
 * V8 grows its heap by up to 4x the live size between full collections when collecting looks slow next to the
 * program, which a server allocating steadily for thousands of streams does. After a 10,000-node mass connect
 * the heap held ~690 MB for ~400 MB live (RSS 1.18 GB); growing by at most 60 % (as Go's GOGC bounds it at 100 %)
 * gave RSS 0.98 GB for the same server CPU. A node flag given on the command line wins.
 */
const heapGrowingPercent = 60;

function boundHeapGrowth(): void {
  if (!process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) setFlagsFromString(`--heap-growing-percent=${heapGrowingPercent}`);
}

export const serverCommands: Command[] = [
  {
    path: ['serve'],
    summary: 'Run the coordination server (embedded defaults: 127.0.0.1:8080, SQLite in ./data)',
    flags: {
      config: { alias: 'c', type: 'string', description: 'config file (YAML or HuJSON)' },
      listen: { type: 'string', description: 'listen address host:port (overrides listen_addr)' },
      'data-dir': { type: 'string', description: 'data folder (overrides data_dir)' },
      'server-url': { type: 'string', description: 'URL clients use (overrides server_url)' },
    },
    async run(ctx) {
      boundHeapGrowth();
      const config = loadConfig({
        file: ctx.flag('config'),
        overrides: { listenAddr: ctx.flag('listen'), dataDir: ctx.flag('data-dir'), serverUrl: ctx.flag('server-url') },
      });
      // Loaded here, not with the module: `health` and `version` share it and need none of the server.
      const { startServer } = await import('../../server.ts');
      const server = await startServer(config);
      let sync: SyncRunner | undefined;
      try {
        sync = await startSync(config, server.url, server.metricsRegistry);
      } catch (err) {
        await server.close();
        throw err;
      }
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await sync?.stop();
      await server.close();
    },
  },
  {
    path: ['health'],
    summary: 'Check that the server and its database answer',
    async run(ctx) {
      const res = await ctx.client().get<{ databaseConnectivity: boolean }>('/api/v1/health');
      if (!res.databaseConnectivity) process.exitCode = 1;
      return ctx.format === 'table' ? `database: ${res.databaseConnectivity ? 'ok' : 'unreachable'}` : renderObject(ctx.format, res);
    },
  },
  {
    path: ['version'],
    summary: 'Print the tailplane version',
    async run(ctx) {
      return ctx.format === 'table' ? version : renderObject(ctx.format, { version });
    },
  },
];

/**
 * The config's `sync.*` as a sync runner talking to this server through its admin API, its metrics in the
 * server's registry (one scrape target); none when not configured.
 */
async function startSync(config: Config, url: string, registry: Registry | undefined): Promise<SyncRunner | undefined> {
  const s = config.sync;
  if (!s.git && !s.file) return undefined;
  const [{ createAdminClient }, { createSync, SyncSettingsError }, { syncMetrics }] = await Promise.all([
    import('../../client/admin-client.ts'),
    import('../../sync/index.ts'),
    import('../../metrics/sync.ts'),
  ]);
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`sync: cannot read the ${what}: ${(err as Error).message}`);
    }
  };
  const apiKey = read(s.apiKeyFile || join(config.dataDir, 'admin-api-key'), 'API key (sync.api_key_file)');
  const webhookSecret = s.webhookSecretFile ? read(s.webhookSecretFile, 'webhook secret') : process.env.TAILPLANE_SYNC_WEBHOOK_SECRET;
  const log = (msg: string) => console.error(JSON.stringify({ level: 30, time: Date.now(), msg }));
  const client = createAdminClient({ url, apiKey, door: 'sync' });
  try {
    const runner = createSync(client, { ...s, webhookSecret }, log, registry && syncMetrics(registry));
    runner.start();
    // The client's keep-alive connections to this very server would hold its shutdown open.
    return { ...runner, stop: () => runner.stop().finally(() => client.close()) };
  } catch (err) {
    throw err instanceof SyncSettingsError ? new ConfigError(`sync: ${err.message}`) : err;
  }
}
