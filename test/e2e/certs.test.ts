/**
 * `tailscale cert` end to end: a real tailscaled (v1.102.5, userspace) gets a certificate for its MagicDNS name
 * from Let's Encrypt's Pebble by ACME DNS-01. The client publishes the challenge through /machine/set-dns, and
 * Pebble (`-dnsserver`) checks it against tailplane's embedded responder. Everything stays on loopback.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createHarness, freePort, type Daemon } from '../harness/tailscaled.ts';
import { pebbleFiles } from '../peers/build.ts';
import { withLogs } from '../helpers/failure.ts';
import { api, spawnServer, tempDir, type ChildServer } from '../helpers/server.ts';

const harness = createHarness();
const base = 'tail.example';
let server: ChildServer;
let pebble: ChildProcess;
let pebbleLog = '';
let directory: string;
let client: Daemon;

/** Resolves once `read()` matches `re`, with the first group. */
async function waitForLine(read: () => string, re: RegExp, what: string, ms = 20_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = re.exec(read());
    if (m) return m[1]!;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms:\n${read()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  server = await spawnServer({
    env: { TAILPLANE_DNS_BASE_DOMAIN: base, TAILPLANE_DNS_NAMESERVERS: '[]', TAILPLANE_CERTS_DNS_LISTEN_ADDR: '127.0.0.1:0' },
  });
  const dnsAddr = await waitForLine(server.log, /acme dns responder listening on (127\.0\.0\.1:\d+)/, 'DNS responder');

  const files = pebbleFiles();
  const dir = tempDir('tp-pebble-');
  const [acme, mgmt, http01, tls01] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acme}`,
      managementListenAddress: `127.0.0.1:${mgmt}`,
      certificate: files.cert,
      privateKey: files.key,
      // Ports Pebble would use for http-01 and tls-alpn-01 checks; DNS-01 never touches them.
      httpPort: http01,
      tlsPort: tls01,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  };
  writeFileSync(join(dir, 'pebble.json'), JSON.stringify(config));
  // No random validation delay and no injected bad nonces: the test measures tailplane, not retries.
  pebble = spawn(files.bin, ['-config', join(dir, 'pebble.json'), '-dnsserver', dnsAddr], {
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  pebble.stdout!.on('data', (d) => (pebbleLog += d));
  pebble.stderr!.on('data', (d) => (pebbleLog += d));
  await waitForLine(() => pebbleLog, /(Listening on: 127\.0\.0\.1:\d+)/, 'Pebble');
  directory = `https://127.0.0.1:${acme}/dir`;

  await api(server, 'POST', '/api/v1/user', { name: 'alice', email: 'alice@example.com' });
  const authKey = (await api(server, 'POST', '/api/v1/preauthkey', { user: '1' })).json.preAuthKey.key;
  // The daemon, not the CLI, talks ACME: it gets Pebble's directory and trusts Pebble's API certificate.
  client = await harness.start({ name: 'web', env: { TS_DEBUG_ACME_DIRECTORY_URL: directory, SSL_CERT_FILE: files.ca } });
  const up = await client.up({ loginServer: server.url, authKey, hostname: 'web', timeoutMs: 60_000 });
  assert.equal(up.code, 0, up.stderr);
});

after(async () => {
  await harness.cleanup();
  pebble?.kill();
  await server?.stop();
});

const logs = () => `${server.log().split('\n').slice(-30).join('\n')}\n--- pebble ---\n${pebbleLog.split('\n').slice(-30).join('\n')}`;

test('tailscale cert gets a certificate for the node FQDN from Pebble through DNS-01', () =>
  withLogs(harness, logs, 'cert', async () => {
    const fqdn = `web.${base}`;
    const status = JSON.parse((await client.cli(['dns', 'status', '--json'])).stdout);
    assert.deepEqual(status.CertDomains, [fqdn], 'the netmap announces the node FQDN');
    const out = tempDir('tp-cert-');
    const [certFile, keyFile] = [join(out, 'web.crt'), join(out, 'web.key')];
    const t0 = Date.now();
    const r = await client.cli(['cert', `--cert-file=${certFile}`, `--key-file=${keyFile}`, fqdn], 120_000);
    assert.equal(r.code, 0, `tailscale cert: ${r.stderr}${r.stdout}`);
    console.log(`# tailscale cert took ${Date.now() - t0} ms`);
    const pem = readFileSync(certFile, 'utf8');
    const leaf = new X509Certificate(pem.slice(0, pem.indexOf('-----END CERTIFICATE-----') + 25));
    assert.equal(leaf.subjectAltName, `DNS:${fqdn}`);
    assert.match(leaf.issuer, /Pebble/);
    assert.match(readFileSync(keyFile, 'utf8'), /PRIVATE KEY/);
    assert.match(server.log(), /published an ACME challenge record/);
    assert.match(pebbleLog, new RegExp(`_acme-challenge\\.${fqdn.replace(/\./g, '\\.')}|dns-01`), 'Pebble validated by DNS-01');
  }));

test('tailscale cert refuses a name that is not in CertDomains', async () => {
  const r = await client.cli(['cert', '--cert-file=-', '--key-file=-', `other.${base}`], 30_000);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /invalid domain "other\.tail\.example"; must be one of \["web\.tail\.example"\]/);
});
