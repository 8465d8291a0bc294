/**
 * Where the Terraform plugin protocol definitions come from: the upstream .proto files are not vendored but
 * copied from the Go module cache (`go mod download`) at pinned versions into ~/.cache/tailplane/proto.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** tfplugin6.8 is the newest protocol Terraform 1.11 speaks; later 6.x minors only add to it. */
const sources = [
  { module: 'github.com/hashicorp/terraform@v1.11.4', from: 'docs/plugin-protocol/tfplugin6.8.proto', to: 'tfplugin6.8.proto' },
  { module: 'github.com/hashicorp/go-plugin@v1.6.3', from: 'internal/plugin/grpc_controller.proto', to: 'plugin/grpc_controller.proto' },
  { module: 'github.com/hashicorp/go-plugin@v1.6.3', from: 'internal/plugin/grpc_stdio.proto', to: 'plugin/grpc_stdio.proto' },
] as const;

export const protoFiles = sources.map((s) => s.to);

export function protoCacheDir(): string {
  return process.env.TAILPLANE_PROTO_DIR ?? join(homedir(), '.cache', 'tailplane', 'proto');
}

export function protosPresent(dir = protoCacheDir()): boolean {
  return protoFiles.every((f) => existsSync(join(dir, f)));
}

/** Copies the pinned .proto files into the cache unless they are there; needs `go` on the PATH once. */
export function ensureProtos(dir = protoCacheDir()): string {
  if (protosPresent(dir)) return dir;
  const moduleDirs = new Map<string, string>();
  for (const s of sources) {
    if (!moduleDirs.has(s.module)) {
      const out = execFileSync('go', ['mod', 'download', '-json', s.module], { encoding: 'utf8', cwd: homedir() });
      moduleDirs.set(s.module, (JSON.parse(out) as { Dir: string }).Dir);
    }
    const target = join(dir, s.to);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(moduleDirs.get(s.module)!, s.from), target);
  }
  return dir;
}
