/**
 * Entry point of terraform-provider-tailplane: run by Terraform or OpenTofu through go-plugin. `--debug` serves
 * without TLS and prints TF_REATTACH_PROVIDERS instead of the handshake, for attaching a terraform by hand.
 */
import { createLogger } from './src/log.ts';
import { checkHost, servePlugin } from './src/plugin.ts';
import { createProvider } from './src/provider.ts';
import { allDataSources, allResources, providerSource } from './src/registry.ts';

// Stdout carries exactly one handshake line; any stray console output goes to stderr instead.
console.log = console.info = console.debug = console.error;

async function main(): Promise<void> {
  const log = createLogger();
  const debug = process.argv.includes('--debug');
  const problem = debug ? null : checkHost(process.env);
  if (problem) {
    process.stderr.write(problem + '\n');
    process.exit(1);
  }
  // Terraform forwards Ctrl-C as StopProvider; dying on SIGINT would cut an apply short.
  process.on('SIGINT', () => log.log('debug', 'ignoring SIGINT'));
  const provider = createProvider({ resources: allResources(), dataSources: allDataSources(), log });
  const plugin = await servePlugin({ provider, log, ...(debug ? { debug: { providerAddress: providerSource } } : {}) });
  await plugin.shutdownRequested;
  await plugin.close();
  await provider.close();
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`terraform-provider-tailplane: ${err instanceof Error ? err.stack : err}\n`);
  process.exit(1);
});
