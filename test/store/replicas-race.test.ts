/**
 * Races across replicas (issue 19, test 3): two `tailplane serve` processes on one PostgreSQL, registrations
 * made by real Noise clients spread over both. One single-use key admits exactly one node; 200 joins with a
 * reusable key get 200 distinct addresses (each replica allocates from its own memory, the database's unique
 * constraints catch the clashes and the loser retries).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { noisePost } from '../control/noise-client.ts';
import { startPostgres, type Postgres } from '../helpers/postgres.ts';
import { api, spawnServer, tempDir, type ChildServer } from '../helpers/server.ts';

let db: Postgres;
let replicas: { server: ChildServer; port: number; key: Uint8Array }[];
let singleUse: string;
let reusable: string;

before(async () => {
  db = await startPostgres();
  const env = { TAILPLANE_STORE_TYPE: 'postgres', TAILPLANE_STORE_POSTGRES_URL: db.url, TAILPLANE_DERP_ENABLED: 'false' };
  const a = await spawnServer({ env });
  const user = (await api(a, 'POST', '/api/v1/user', { name: 'racers' })).json.user.id;
  // Made through replica A before B starts, so B loads them from the database (this test is about the races,
  // not about how a running replica learns of another's writes).
  singleUse = (await api(a, 'POST', '/api/v1/preauthkey', { user })).json.preAuthKey.key;
  reusable = (await api(a, 'POST', '/api/v1/preauthkey', { user, reusable: true })).json.preAuthKey.key;
  // The second replica shares the database, so the first one's admin key is valid there too.
  const dirB = tempDir();
  copyFileSync(join(a.dataDir, 'admin-api-key'), join(dirB, 'admin-api-key'));
  const b = await spawnServer({ dataDir: dirB, env });
  replicas = await Promise.all(
    [a, b].map(async (server) => {
      const { publicKey } = (await (await fetch(`${server.url}/key?v=130`)).json()) as { publicKey: string };
      return { server, port: Number(new URL(server.url).port), key: Buffer.from(publicKey.slice('mkey:'.length), 'hex') };
    }),
  );
});
after(async () => {
  await Promise.all((replicas ?? []).map((r) => r.server.stop()));
  await db?.destroy();
});

const nodeKey = () => `nodekey:${randomBytes(32).toString('hex')}`;
/** Registration `i` goes to replica i % 2, over a fresh Noise connection with a fresh machine key. */
const register = (i: number, authKey: string) => {
  const r = replicas[i % 2]!;
  return noisePost(r.port, r.key, '/machine/register', { Version: 130, NodeKey: nodeKey(), Auth: { AuthKey: authKey }, Hostinfo: { Hostname: `racer${i}` } });
};

async function count(sql: string): Promise<Record<string, number>> {
  const client = new pg.Client(db.url);
  await client.connect();
  try {
    return (await client.query(sql)).rows[0];
  } finally {
    await client.end();
  }
}

test('50 concurrent registrations with one single-use key over two replicas: exactly one succeeds', async () => {
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => register(i, singleUse)));
  const winners = results.filter((r) => r.status === 200 && !r.json.Error);
  const losers = results.filter((r) => r.json?.Error);
  assert.equal(winners.length, 1, JSON.stringify(results.map((r) => r.json?.Error ?? r.status)));
  assert.equal(losers.length, 49);
  assert.ok(losers.every((r) => r.json.Error === 'auth key already used'), JSON.stringify([...new Set(losers.map((r) => r.json.Error))]));
  assert.deepEqual(await count('SELECT count(*)::int AS n FROM nodes'), { n: 1 });
});

test('200 concurrent joins spread over two replicas get 200 distinct addresses and names', async () => {
  // Four waves of 50 at once: 200 simultaneous Noise handshakes on this shared 2-core machine outlast the test
  // client's 5 s upgrade deadline; the waves still race each other on both replicas.
  const results = [];
  for (let wave = 0; wave < 4; wave++) results.push(...(await Promise.all(Array.from({ length: 50 }, (_, i) => register(wave * 50 + i, reusable)))));
  const failed = results.filter((r) => r.status !== 200 || r.json.Error);
  const why = () => replicas.flatMap((r) => r.server.log().split('\n').filter((l) => l.includes('control request failed'))).join('\n');
  assert.deepEqual(failed.map((r) => r.json?.Error ?? r.status), [], why());
  assert.deepEqual(await count('SELECT count(*)::int AS n, count(DISTINCT ipv4)::int AS v4, count(DISTINCT ipv6)::int AS v6, count(DISTINCT given_name)::int AS names FROM nodes'), {
    n: 201, v4: 201, v6: 201, names: 201,
  });
});
