/**
 * Installs terraform-provider-tailplane for offline use: a launcher in an unpacked filesystem mirror plus a
 * Terraform/OpenTofu CLI config that selects it. Usage: node --import tsx provider/install.ts [--dir DIR]
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { providerSource, providerVersion } from './src/registry.ts';
import { ensureProtos } from './src/proto-source.ts';

export interface Installation {
  /** The filesystem mirror root (`path` in the CLI config). */
  mirror: string;
  /** The launcher script Terraform runs. */
  launcher: string;
  /** The CLI config file to export as TF_CLI_CONFIG_FILE. */
  cliConfig: string;
}

/** Terraform's name for this machine's platform, e.g. linux_amd64. */
export function platform(): string {
  const arch = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' }[process.arch as string] ?? process.arch;
  return `${process.platform}_${arch}`;
}

export function installProvider(dir: string): Installation {
  ensureProtos();
  const root = resolve(dir);
  const mirror = join(root, 'mirror');
  const [, namespace, type] = providerSource.split('/');
  const pkgDir = join(mirror, providerSource, providerVersion, platform());
  mkdirSync(pkgDir, { recursive: true });

  // exec keeps one process: Terraform's kill must reach node itself, and no orphan may hold its pipes.
  const launcher = join(pkgDir, `terraform-provider-${type}_v${providerVersion}`);
  const tsx = import.meta.resolve('tsx');
  const main = join(import.meta.dirname, 'main.ts');
  writeFileSync(launcher, `#!/bin/sh\n# terraform-provider-${type} ${providerVersion}, run from this checkout through tsx.\nexec ${sh(process.execPath)} --import ${sh(tsx)} ${sh(main)} "$@"\n`);
  chmodSync(launcher, 0o755);

  const cliConfig = join(root, 'terraformrc');
  writeFileSync(
    cliConfig,
    `# Written by provider/install.ts: ${providerSource} comes from the local mirror, everything else as usual.
provider_installation {
  filesystem_mirror {
    path    = ${JSON.stringify(mirror)}
    include = [${JSON.stringify(`terraform.local/${namespace}/*`)}]
  }
  direct {
    exclude = ["terraform.local/*/*"]
  }
}
disable_checkpoint = true
`,
  );
  return { mirror, launcher, cliConfig };
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

if (import.meta.filename === process.argv[1] || process.argv[1]?.endsWith('provider/install.ts')) {
  const i = process.argv.indexOf('--dir');
  const dir = i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : join(homedir(), '.tailplane', 'terraform');
  const { cliConfig, launcher } = installProvider(dir);
  process.stderr.write(`installed ${providerSource} ${providerVersion} at ${launcher}\n`);
  process.stdout.write(`export TF_CLI_CONFIG_FILE=${sh(cliConfig)}\n`);
}
