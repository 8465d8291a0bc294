/** Loads the tfplugin6 and go-plugin service definitions (upstream files from the Go module cache, plus our health.proto). */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

import { protoCacheDir, protoFiles, protosPresent } from './proto-source.ts';

const ownDir = join(import.meta.dirname, '..', 'proto');

/** Plain-object messages: snake_case fields, enums as names, bytes as Buffers, int64 as numbers. */
const options: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [ownDir] };

export function loadServices() {
  const upstream = protoCacheDir();
  if (!protosPresent(upstream)) {
    throw new Error(`Terraform protocol files missing in ${upstream}: run "node --import tsx provider/install.ts" once`);
  }
  const def = protoLoader.loadSync([...protoFiles, 'health.proto'], { ...options, includeDirs: [upstream, ownDir] });
  const pkg = grpc.loadPackageDefinition(def) as any;
  return {
    provider: pkg.tfplugin6.Provider.service as grpc.ServiceDefinition,
    controller: pkg.plugin.GRPCController.service as grpc.ServiceDefinition,
    stdio: pkg.plugin.GRPCStdio.service as grpc.ServiceDefinition,
    health: pkg.grpc.health.v1.Health.service as grpc.ServiceDefinition,
  };
}
