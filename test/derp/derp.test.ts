/**
 * Interop: tailscale.com's own DERP client (derphttp, pinned version) and net/stun against our relay and STUN server,
 * driven by the derpprobe Go program in test/peers/derpprobe.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { x25519 } from '@noble/curves/ed25519.js';
import { createDerpServer, createStunServer, embeddedDerpMap, type DerpServer, type StunServer } from '../../src/derp/index.ts';
import { buildGoProgram } from '../peers/go-build.ts';

interface Report {
  ok: boolean;
  checks: Array<{ name: string; ok: boolean; detail?: string }>;
}

function key() {
  const priv = x25519.utils.randomSecretKey();
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  return { priv: 'privkey:' + hex(priv), pub: 'nodekey:' + hex(x25519.getPublicKey(priv)) };
}

/** Runs the probe without blocking the event loop (the servers live in this process). */
function probe(bin: string, args: string[], env: Record<string, string> = {}): Promise<Report> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: 90_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      try {
        resolve(JSON.parse(stdout) as Report);
      } catch {
        reject(new Error(`derpprobe: ${err?.message ?? ''}\n${stdout}\n${stderr}`));
      }
    });
  });
}

function check(r: Report, name: string): { ok: boolean; detail?: string } {
  const c = r.checks.find((x) => x.name === name);
  assert.ok(c, `no check "${name}" in ${JSON.stringify(r)}`);
  return c;
}

const [a, b, denied] = [key(), key(), key()];
let bin: string;
let http: Server;
let derp: DerpServer;
let stun: StunServer;
let port: number;

before(async () => {
  bin = await buildGoProgram(fileURLToPath(new URL('../peers/derpprobe/', import.meta.url)), 'derpprobe');
  derp = createDerpServer({ isAllowed: (k) => k === a.pub || k === b.pub });
  http = createServer((_req, res) => res.writeHead(404).end());
  derp.attach(http);
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  port = (http.address() as { port: number }).port;
  stun = await createStunServer({ port: 0, host: '127.0.0.1' });
});

after(async () => {
  derp?.close();
  await stun?.close();
  await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
});

test('real derphttp clients: relay, 64 KiB packets, ping/pong, peer gone, duplicates, denied key', async () => {
  const r = await probe(bin, [
    '-derp', `http://127.0.0.1:${port}/derp`,
    '-key-a', a.priv, '-key-b', b.priv, '-key-denied', denied.priv,
    '-stun', `127.0.0.1:${stun.port}`,
  ]);
  for (const name of [
    'connect A', 'connect B', 'server info A', 'server info B', 'relay A->B', 'relay B->A 64KiB', 'ping/pong',
    'peer gone not-here', 'duplicate key: newer wins', 'peer gone disconnected', 'denied key rejected',
  ]) {
    assert.ok(check(r, name).ok, `${name}: ${check(r, name).detail}`);
  }
  assert.equal(check(r, 'server info A').detail, derp.publicKey);
  const s = check(r, `stun 127.0.0.1:${stun.port}`);
  assert.ok(s.ok, s.detail);
  assert.match(s.detail!, /^127\.0\.0\.1:\d+$/);
  assert.equal(r.ok, true);
  const st = derp.stats();
  assert.ok(st.packetsRelayed >= 3, JSON.stringify(st));
  assert.ok(st.rejected >= 1);
});

test('dialing from the embedded DERP map as tailscaled does (TS_DEBUG_USE_DERP_HTTP=1), STUN from the map', async () => {
  const map = embeddedDerpMap({ serverUrl: `http://127.0.0.1:${port}`, stunPort: stun.port, insecureForTests: true });
  const dir = await mkdtemp(join(tmpdir(), 'derpprobe-'));
  const file = join(dir, 'derpmap.json');
  await writeFile(file, JSON.stringify(map));
  const r = await probe(bin, ['-derpmap', file, '-key-a', a.priv, '-key-b', b.priv], { TS_DEBUG_USE_DERP_HTTP: '1' });
  assert.equal(r.ok, true, JSON.stringify(r, null, 1));
  assert.ok(check(r, 'relay A->B').ok);
  assert.ok(check(r, `stun 127.0.0.1:${stun.port}`).ok);
});
