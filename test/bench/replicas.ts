/**
 * `node --import tsx test/bench/replicas.ts [--nodes 1000] [--concurrency 32]`: the HA fan-out figure of
 * issue 19. Two `tailplane serve` replicas on one throw-away PostgreSQL 15; simulated clients (the bench's
 * load generator) all stream from replica B; a policy change is made through replica A and the time until
 * the last client on B holds the new packet filter is reported, with the same change on a single SQLite
 * server beside it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { api, spawnServer, tempDir, type ChildServer } from '../helpers/server.ts';
import { startPostgres } from '../helpers/postgres.ts';
import { createFleet, waitForFrames } from './loadgen/fleet.ts';
import { keyTarget } from './servers/server.ts';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '1000' }, concurrency: { type: 'string', default: '32' } } });
const nodes = Number(values.nodes);
const concurrency = Number(values.concurrency);
const env = { TAILPLANE_DERP_STUN_LISTEN_ADDR: '' };
const policy = (n: number) => `{"acls":[{"action":"accept","src":["*"],"dst":["*:${n}"]}]}`;
const hasPacketFilter = (m: { PacketFilter?: unknown }) => m.PacketFilter !== undefined;

/** Streams `nodes` clients from `streamFrom`, then times a policy change through `writeTo` until all have it. */
async function fanOut(label: string, writeTo: ChildServer, streamFrom: ChildServer): Promise<number> {
  const key = (await api(writeTo, 'POST', '/api/v1/preauthkey', { user: (await api(writeTo, 'POST', '/api/v1/user', { name: 'bench' })).json.user.id, reusable: true })).json.preAuthKey.key;
  const fleet = createFleet(await keyTarget(streamFrom.url), { concurrency });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: nodes }, (_, i) => fleet.join(i, key)));
  console.log(`${label}: ${nodes} clients streaming in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await new Promise((r) => setTimeout(r, 2000));
  const start = performance.now();
  const a = await waitForFrames(fleet.nodes, hasPacketFilter, () => api(writeTo, 'PUT', '/api/v1/policy', { policy: policy(443) }), 30_000);
  const ms = a.last - start;
  console.log(`${label}: policy change reached ${a.matched}/${nodes} clients in ${ms.toFixed(0)} ms${a.missing ? ` (${a.missing} missing)` : ''}`);
  fleet.close();
  return ms;
}

const db = await startPostgres();
const pgEnv = { ...env, TAILPLANE_STORE_TYPE: 'postgres', TAILPLANE_STORE_POSTGRES_URL: db.url };
const a = await spawnServer({ env: { ...pgEnv, TAILPLANE_DERP_REGION_ID: '901' }, startMs: 90_000 });
const bDir = tempDir();
writeFileSync(join(bDir, 'admin-api-key'), a.apiKey + '\n', { mode: 0o600 });
const b = await spawnServer({ dataDir: bDir, env: { ...pgEnv, TAILPLANE_DERP_REGION_ID: '902' }, startMs: 90_000 });
const single = await spawnServer({ env, startMs: 90_000 });
try {
  const replicated = await fanOut('two replicas, change on A, clients on B', a, b);
  await b.stop();
  await a.stop();
  const alone = await fanOut('one server on SQLite', single, single);
  console.log(`\n| setup | ${nodes} clients: change → last client |\n|---|---|\n| 2 replicas on PostgreSQL (A → B) | ${replicated.toFixed(0)} ms |\n| 1 server on SQLite | ${alone.toFixed(0)} ms |`);
} finally {
  await Promise.all([a.stop(), b.stop(), single.stop()]);
  await db.destroy();
}
