/** Interop tests of the Noise transport with tailscale's own Go client (test/peers/noiseprobe, tailscale.com/control/ts2021). */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { createFrameEncoder } from '../../src/control/frames.ts';
import { machineKeyText } from '../../src/control/noise/keys.ts';
import { generateKeyPair } from '../../src/control/noise/primitives.ts';
import { createNoiseUpgrade, type NoiseUpgrade } from '../../src/control/upgrade.ts';
import { createHarness } from '../harness/tailscaled.ts';
import { peerProgram } from '../peers/build.ts';

interface ProbeOutput {
  machineKey?: string;
  serverKey?: string;
  error?: string;
  results?: { status: number; bodyLen: number; bodySha256: string; body: string; frames?: Record<string, unknown>[] }[];
}

const serverKey = generateKeyPair();
/** The big body: > 64 KiB so it crosses many 4 KiB records and several HTTP/2 flow-control windows. */
const bigBody = JSON.stringify({ filler: Array.from({ length: 12_000 }, (_, i) => `line-${i}`).join(',') });
const frameEncoder = createFrameEncoder();
const seen: string[] = [];
let upgrade: NoiseUpgrade;
let server: http.Server;
let url: string;
let probe: string;

before(async () => {
  probe = await peerProgram('noiseprobe');
  upgrade = createNoiseUpgrade({
    keyPair: serverKey,
    logger: { debug() {}, info() {}, warn() {} },
    onRequest(req, res, peer) {
      seen.push(peer.machineKey);
      void req.body().then((body) => {
        if (req.url === '/machine/register' && req.headers['ts-lb'] !== undefined) {
          // Only the real tailscaled sends the load-balancer hint; answer it with a user-facing error (trap T35).
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ Error: 'tailplane noise test: registration closed' }));
        } else if (req.url === '/big') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(bigBody);
        } else if (req.url === '/machine/map') {
          res.writeHead(200);
          res.write(frameEncoder.encode({ Node: { ID: 1, StableID: 'n1', Name: 'a.example.' }, Domain: 'example' }));
          res.write(frameEncoder.encode({ KeepAlive: true }));
          res.end(frameEncoder.encode({ Domain: 'd'.repeat(200_000) }));
        } else {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ machineKey: peer.machineKey, version: peer.version, path: req.url, body: body.toString() }));
        }
      });
    },
  });
  server = http.createServer();
  upgrade.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
after(() => {
  upgrade?.close();
  server?.close();
});

function runProbe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ out: ProbeOutput; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    execFile(probe, ['-server', url, ...args], { timeout: 60_000, maxBuffer: 64 << 20, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? -1) : 0;
      try {
        resolve({ out: JSON.parse(stdout) as ProbeOutput, stderr, code });
      } catch {
        reject(new Error(`noiseprobe gave no JSON (exit ${code}): ${stdout}\n${stderr}`));
      }
    });
  });
}

test('the real ts2021 client registers over Noise; the server sees its machine key', { timeout: 90_000 }, async () => {
  const { out, stderr, code } = await runProbe(['-path', '/machine/register', '-body', '{"Version":142}']);
  assert.equal(code, 0, `probe failed: ${out.error}\n${stderr}`);
  assert.equal(out.serverKey, machineKeyText(serverKey.publicKey), '/key served the Noise key');
  const r = out.results![0]!;
  assert.equal(r.status, 200);
  const body = JSON.parse(r.body);
  assert.equal(body.machineKey, out.machineKey, 'echoed machine key is the one the Go client used');
  assert.ok(body.version >= 113, `Go client version ${body.version}`);
  assert.equal(body.path, '/machine/register');
  assert.equal(body.body, '{"Version":142}');
});

test('a > 64 KiB response arrives intact, three times over one connection', { timeout: 90_000 }, async () => {
  const { out, stderr, code } = await runProbe(['-path', '/big', '-requests', '3']);
  assert.equal(code, 0, `probe failed: ${out.error}\n${stderr}`);
  const want = createHash('sha256').update(bigBody).digest('hex');
  assert.ok(bigBody.length > 64 * 1024);
  assert.equal(out.results!.length, 3);
  for (const r of out.results!) {
    assert.equal(r.status, 200);
    assert.equal(r.bodyLen, Buffer.byteLength(bigBody));
    assert.equal(r.bodySha256, want);
  }
});

test("map frames decode with tailscale's own zstdframe into tailcfg.MapResponse", { timeout: 90_000 }, async () => {
  const { out, stderr, code } = await runProbe(['-path', '/machine/map', '-frames']);
  assert.equal(code, 0, `probe failed: ${out.error}\n${stderr}`);
  const frames = out.results![0]!.frames!;
  assert.equal(frames.length, 3);
  assert.equal((frames[0]!.Node as { Name: string }).Name, 'a.example.');
  assert.equal(frames[1]!.KeepAlive, true);
  assert.equal((frames[2]!.Domain as string).length, 200_000);
});

test('concurrent Go clients each get their own authenticated peer', { timeout: 90_000 }, async () => {
  const runs = await Promise.all([1, 2, 3].map(() => runProbe(['-path', '/whoami'])));
  const keys = runs.map(({ out, code, stderr }) => {
    assert.equal(code, 0, `probe failed: ${out.error}\n${stderr}`);
    assert.equal(JSON.parse(out.results![0]!.body).machineKey, out.machineKey);
    return out.machineKey;
  });
  assert.equal(new Set(keys).size, 3);
  for (const k of keys) assert.ok(seen.includes(k!));
});

test('a client offering version 112 is refused with a readable server error', { timeout: 90_000 }, async () => {
  const { out, stderr, code } = await runProbe(['-version', '112', '-timeout', '4s'], { TS_DEBUG_NOISE_DIAL: '1' });
  assert.notEqual(code, 0);
  assert.ok(out.error);
  assert.match(stderr, /server error: "unsupported client version 112: this control server needs capability version 113 or newer/);
});

test('a real tailscaled reaches /machine/register over Noise and shows the server error', { timeout: 90_000 }, async () => {
  const harness = createHarness();
  try {
    const d = await harness.start({ name: 'noise1' });
    try {
      const before = seen.length;
      const r = await d.up({ loginServer: url, hostname: 'noise1', authKey: 'tskey-test-noise', timeoutMs: 30_000 });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /backend error: tailplane noise test: registration closed/);
      assert.ok(seen.length > before, 'the daemon made a request over Noise');
    } catch (err) {
      d.dumpLogs();
      throw err;
    }
  } finally {
    await harness.cleanup();
  }
});
