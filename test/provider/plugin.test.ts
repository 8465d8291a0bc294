/**
 * The go-plugin contract as Terraform's host side uses it: cookie check, one handshake line on stdout, AutoMTLS
 * that requires the host's client certificate, the tfplugin6 service behind it, and Shutdown ending the process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generatePluginCert, type PluginCert } from '../../provider/src/cert.ts';
import { magicCookieKey, magicCookieValue } from '../../provider/src/plugin.ts';
import { loadServices } from '../../provider/src/proto.ts';
import { repoRoot } from '../helpers/server.ts';

const main = join(repoRoot, 'provider', 'main.ts');

function startPlugin(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', main], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const firstLine = new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no handshake in 20 s:\n${stderr}`)), 20_000);
    child.stdout.on('data', () => {
      if (stdout.includes('\n')) {
        clearTimeout(timer);
        res(stdout.slice(0, stdout.indexOf('\n')));
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      rej(new Error(`plugin exited before the handshake:\n${stderr}`));
    });
  });
  firstLine.catch(() => {}); // Awaited only by tests that expect a handshake.
  return { child, firstLine, exited, output: () => ({ stdout, stderr }) };
}

function client(port: number, serverPem: string, host?: PluginCert) {
  const { provider, controller } = loadServices();
  const creds = host
    ? grpc.credentials.createSsl(Buffer.from(serverPem), Buffer.from(host.keyPem), Buffer.from(host.certPem))
    : grpc.credentials.createSsl(Buffer.from(serverPem));
  // go-plugin dials the loopback address and verifies the certificate for "localhost".
  const options = { 'grpc.ssl_target_name_override': 'localhost' };
  const Provider = grpc.makeGenericClientConstructor(provider, 'Provider');
  const Controller = grpc.makeGenericClientConstructor(controller, 'GRPCController');
  return {
    provider: new Provider(`127.0.0.1:${port}`, creds, options) as any,
    controller: new Controller(`127.0.0.1:${port}`, creds, options) as any,
  };
}

const unary = (c: any, method: string, req: object) =>
  new Promise<any>((res, rej) => c[method](req, { deadline: Date.now() + 10_000 }, (err: Error | null, out: unknown) => (err ? rej(err) : res(out))));

test('without the magic cookie the plugin refuses to run and prints nothing on stdout', async () => {
  const p = startPlugin({ [magicCookieKey]: '' });
  assert.equal(await p.exited, 1);
  assert.equal(p.output().stdout, '');
  assert.match(p.output().stderr, /This binary is a plugin/);
});

test('handshake, mutual TLS, the provider service and Shutdown', async () => {
  const host = await generatePluginCert();
  const p = startPlugin({ [magicCookieKey]: magicCookieValue, PLUGIN_CLIENT_CERT: host.certPem, PLUGIN_PROTOCOL_VERSIONS: '5,6' });
  try {
    const line = await p.firstLine;
    const m = /^1\|6\|tcp\|127\.0\.0\.1:(\d+)\|grpc\|([A-Za-z0-9+/]+)$/.exec(line);
    assert.ok(m, `handshake line: ${line}`);
    const cert = new X509Certificate(Buffer.from(m[2]!, 'base64'));
    assert.ok(cert.checkHost('localhost'));
    assert.ok(cert.ca);
    assert.ok(cert.verify(cert.publicKey), 'self-signed');

    // A client without the host's certificate is turned away.
    const stranger = client(Number(m[1]), cert.toString());
    await assert.rejects(unary(stranger.provider, 'GetProviderSchema', {}));
    stranger.provider.close();

    const c = client(Number(m[1]), cert.toString(), host);
    const schema = await unary(c.provider, 'GetProviderSchema', {});
    assert.deepEqual(Object.keys(schema.resource_schemas).sort(), ['tailplane_dns', 'tailplane_node', 'tailplane_policy', 'tailplane_preauth_key', 'tailplane_user']);
    assert.deepEqual(Object.keys(schema.data_source_schemas).sort(), ['tailplane_nodes', 'tailplane_users']);
    const apiKey = schema.provider.block.attributes.find((a: { name: string }) => a.name === 'api_key');
    assert.equal(apiKey.sensitive, true);
    assert.equal(schema.server_capabilities.get_provider_schema_optional, true);
    assert.deepEqual(await unary(c.provider, 'StopProvider', {}), { Error: '' });

    const started = Date.now();
    await unary(c.controller, 'Shutdown', {});
    assert.equal(await p.exited, 0);
    assert.ok(Date.now() - started < 2000, 'exits before go-plugin would kill it');
    assert.equal(p.output().stdout, line + '\n', 'stdout holds the handshake line and nothing else');
    c.provider.close();
    c.controller.close();
  } finally {
    p.child.kill();
  }
});
