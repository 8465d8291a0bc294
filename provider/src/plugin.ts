/**
 * The go-plugin side of a Terraform provider process: magic-cookie check, a gRPC server on loopback with
 * AutoMTLS, the handshake line on stdout, and the Provider, GRPCController, GRPCStdio and health services.
 */
import * as grpc from '@grpc/grpc-js';
import { generatePluginCert } from './cert.ts';
import type { Logger } from './log.ts';
import { loadServices } from './proto.ts';
import type { Provider } from './provider.ts';

/** Terraform's handshake cookie (hashicorp/terraform internal/plugin/serve.go); a UX check, not security. */
export const magicCookieKey = 'TF_PLUGIN_MAGIC_COOKIE';
export const magicCookieValue = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';
const coreProtocolVersion = 1;
const appProtocolVersion = 6;

export interface ServeOptions {
  provider: Provider;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** Where the handshake line goes; nothing else may ever be written there. */
  stdout?: (line: string) => void;
  /** Serve plaintext without the cookie and print TF_REATTACH_PROVIDERS for this address (debugging, tests). */
  debug?: { providerAddress: string };
}

export interface PluginServer {
  /** The handshake line as printed, without the newline. */
  readonly handshake: string;
  /** Resolves when the host asked the plugin to shut down (GRPCController.Shutdown). */
  readonly shutdownRequested: Promise<void>;
  /** Stops serving: lets the answer in flight (the Shutdown reply) finish, forcing the rest after a second. */
  close(): Promise<void>;
}

/** Why this process cannot serve, or null when the host is a go-plugin client speaking protocol 6. */
export function checkHost(env: NodeJS.ProcessEnv): string | null {
  if (env[magicCookieKey] !== magicCookieValue) {
    return 'This binary is a plugin. These are not meant to be executed directly.\nPlease execute the program that consumes these plugins, which will load any plugins automatically.';
  }
  const offered = (env.PLUGIN_PROTOCOL_VERSIONS ?? String(appProtocolVersion)).split(',').map((v) => v.trim());
  if (!offered.includes(String(appProtocolVersion))) return `this provider speaks plugin protocol ${appProtocolVersion}; the host offers ${offered.join(',')}`;
  return null;
}

/** The go-plugin handshake line; the certificate is base64 without padding (Go's RawStdEncoding). */
export function handshakeLine(port: number, certDer: Buffer | null): string {
  const cert = certDer ? certDer.toString('base64').replace(/=+$/, '') : '';
  return `${coreProtocolVersion}|${appProtocolVersion}|tcp|127.0.0.1:${port}|grpc|${cert}`;
}

export async function servePlugin(opts: ServeOptions): Promise<PluginServer> {
  const env = opts.env ?? process.env;
  const clientCertPem = opts.debug ? '' : (env.PLUGIN_CLIENT_CERT ?? '');
  const services = loadServices();
  // go-plugin's client allows messages up to MaxInt32; schemas and states can exceed grpc-js's 4 MiB default.
  const server = new grpc.Server({ 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
  let requestShutdown!: () => void;
  const shutdownRequested = new Promise<void>((res) => (requestShutdown = res));

  server.addService(services.provider, providerImplementation(opts.provider));
  server.addService(services.controller, {
    Shutdown: (_call: unknown, cb: grpc.sendUnaryData<object>) => {
      opts.log.log('debug', 'shutdown requested by the host');
      cb(null, {});
      setImmediate(requestShutdown);
    },
  });
  // Nothing is written to the process's stdout after the handshake, so the stdio stream has nothing to carry.
  server.addService(services.stdio, { StreamStdio: (call: grpc.ServerWritableStream<object, object>) => call.end() });
  server.addService(services.health, { Check: (_call: unknown, cb: grpc.sendUnaryData<object>) => cb(null, { status: 'SERVING' }) });

  let certDer: Buffer | null = null;
  let creds = grpc.ServerCredentials.createInsecure();
  if (clientCertPem) {
    const cert = await generatePluginCert();
    certDer = cert.der;
    // Only the host that started us holds the key for PLUGIN_CLIENT_CERT: require and verify it.
    creds = grpc.ServerCredentials.createSsl(Buffer.from(clientCertPem), [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) }], true);
  }

  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? rej(err) : res(p))));
  const write = opts.stdout ?? ((line: string) => process.stdout.write(line + '\n'));
  const handshake = handshakeLine(port, certDer);
  if (opts.debug) {
    const reattach = { [opts.debug.providerAddress]: { Protocol: 'grpc', ProtocolVersion: appProtocolVersion, Pid: process.pid, Test: true, Addr: { Network: 'tcp', String: `127.0.0.1:${port}` } } };
    write(`TF_REATTACH_PROVIDERS='${JSON.stringify(reattach)}'`);
  } else {
    write(handshake);
  }
  opts.log.log('debug', 'plugin serving', { port, tls: certDer !== null });
  const close = () =>
    new Promise<void>((res) => {
      const force = setTimeout(() => (server.forceShutdown(), res()), 1000);
      server.tryShutdown(() => (clearTimeout(force), res()));
    });
  return { handshake, shutdownRequested, close };
}

/** grpc-js unary handlers that run the provider's methods. */
function providerImplementation(provider: Provider): grpc.UntypedServiceImplementation {
  return Object.fromEntries(
    provider.methods.map((name) => [
      name,
      (call: grpc.ServerUnaryCall<Record<string, unknown>, object>, cb: grpc.sendUnaryData<object>) => {
        provider.call(name, call.request).then(
          (res) => cb(null, res),
          (err: Error) => cb({ code: grpc.status.INTERNAL, details: err.message }),
        );
      },
    ]),
  );
}
