/**
 * `tailplane serve`, `health` and `version`.
 */
import { loadConfig } from '../../config/config.ts';
import { startServer } from '../../server.ts';
import { version } from '../../version.ts';
import { renderObject } from '../output.ts';
import type { Command } from './command.ts';

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
      const config = loadConfig({
        file: ctx.flag('config'),
        overrides: { listenAddr: ctx.flag('listen'), dataDir: ctx.flag('data-dir'), serverUrl: ctx.flag('server-url') },
      });
      const server = await startServer(config);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
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
