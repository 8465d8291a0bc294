/**
 * `tailscale cert` end to end: a real tailscaled (v1.102.5, userspace) gets a certificate for its MagicDNS name
 * from Let's Encrypt's Pebble by ACME DNS-01. The client publishes the challenge through /machine/set-dns, and
 * Pebble (`-dnsserver`) checks it against tailplane's embedded responder. Everything stays on loopback.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
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
let shim: https.Server;
let pebbleLog = '';
let directory: string;
let dnsAddr: string;
let client: Daemon;

/**
 * A TLS pass-through in front of Pebble that adds one header. tailscale's ACME client (tempfork/acme
 * CreateOrderCert) polls the order at the Location of the finalize response; Pebble finalizes asynchronously
 * and answers "processing" without a Location, so the client would poll "". The shim sets Location to the
 * order's URL (finalize-order/<id> -> my-order/<id>) and changes nothing else; Pebble builds its URLs from the
 * Host header, which passes through, so every URL it hands out points back at the shim.
 */
async function pebbleShim(pebblePort: number, files: { cert: string; key: string; ca: string }): Promise<https.Server> {
  const ca = readFileSync(files.ca);
  const shim = https.createServer({ cert: readFileSync(files.cert), key: readFileSync(files.key) }, (req, res) => {
    const up = https.request({ host: '127.0.0.1', port: pebblePort, method: req.method, path: req.url, headers: req.headers, ca }, (upRes) => {
      const headers = { ...upRes.headers };
      const m = /^\/finalize-order\/([^/?]+)$/.exec(req.url ?? '');
      if (m && !headers.location) headers.location = `https://${req.headers.host}/my-order/${m[1]}`;
      res.writeHead(upRes.statusCode ?? 502, headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => shim.listen(0, '127.0.0.1', r));
  return shim;
}

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
  dnsAddr = await waitForLine(server.log, /acme dns responder listening on (127\.0\.0\.1:\d+)/, 'DNS responder');

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
  shim = await pebbleShim(acme, files);
  directory = `https://127.0.0.1:${(shim.address() as AddressInfo).port}/dir`;

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
  shim?.close();
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
    // The daemon chose DNS-01, and Pebble, whose only DNS is tailplane's responder, found the TXT record.
    assert.match(client.logTail(400), /acme: using dns-01/);
    assert.match(pebbleLog, new RegExp(`Using custom DNS resolver for ACME challenges: ${dnsAddr.replace(/\./g, '\\.')}`));
    assert.match(pebbleLog, /set VALID by completed challenge/);
  }));

test('tailscale cert refuses a name that is not in CertDomains', async () => {
  const r = await client.cli(['cert', '--cert-file=-', '--key-file=-', `other.${base}`], 30_000);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /invalid domain "other\.tail\.example"; must be one of \["web\.tail\.example"\]/);
});

test('a rename moves CertDomains to the new name on the open stream', async () => {
  const node = (await api(server, 'GET', '/api/v1/node')).json.nodes.find((n: { givenName: string }) => n.givenName === 'web');
  assert.equal((await api(server, 'POST', `/api/v1/node/${node.id}/rename/www`)).status, 200);
  await client.waitFor(async () => {
    const s = JSON.parse((await client.cli(['dns', 'status', '--json'])).stdout);
    return JSON.stringify(s.CertDomains) === JSON.stringify([`www.${base}`]);
  }, 5_000, 'CertDomains = [www.tail.example]');
});
