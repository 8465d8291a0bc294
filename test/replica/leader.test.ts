/**
 * Leader election on a real PostgreSQL: one leader among several electors; it moves when the leader stops,
 * when its database session is killed, and comes back after the database restarts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { startLeaderElection, type Leader } from '../../src/replica/leader.ts';
import { startPostgres, type Postgres } from '../helpers/postgres.ts';

let db: Postgres;
before(async () => (db = await startPostgres()));
after(() => db.destroy());

const retryMs = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
const leaders = (all: Leader[]) => all.filter((l) => l.isLeader());

test('exactly one of three electors leads, and leadership moves when the leader stops', async () => {
  const changes: string[] = [];
  const all = [0, 1, 2].map((i) => startLeaderElection({ url: db.url, retryMs, onChange: (on) => changes.push(`${i}:${on}`) }));
  await until('a leader', () => leaders(all).length === 1);
  await sleep(5 * retryMs);
  assert.equal(leaders(all).length, 1, 'still exactly one after several rounds');
  const first = all.findIndex((l) => l.isLeader());
  const started = Date.now();
  await all[first]!.stop();
  await until('a new leader', () => leaders(all).length === 1);
  assert.ok(Date.now() - started < 3 * retryMs + 1000, `took over in ${Date.now() - started} ms`);
  assert.notEqual(all.findIndex((l) => l.isLeader()), first);
  assert.ok(changes.includes(`${first}:false`));
  for (const l of all) await l.stop();
});

test('a leader whose database session is killed steps down; the lock goes to another; a restart of PostgreSQL elects again', async () => {
  const all = [0, 1].map(() => startLeaderElection({ url: db.url, retryMs }));
  await until('a leader', () => leaders(all).length === 1);
  const was = all.findIndex((l) => l.isLeader());
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  // The holder's backend: the session holding our advisory lock.
  await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted`);
  await admin.end();
  await until('the old leader to step down', () => !all[was]!.isLeader(), 5000);
  await until('a leader again', () => leaders(all).length === 1);

  await db.stop();
  await until('nobody to lead while the database is down', () => leaders(all).length === 0, 10_000);
  await db.start();
  await until('a leader after the restart', () => leaders(all).length === 1, 15_000);
  await sleep(5 * retryMs);
  assert.equal(leaders(all).length, 1);
  for (const l of all) await l.stop();
});
