/** The haproxy test helper: spreads connections over live backends and stops sending to one that died. */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { startHaproxy } from '../helpers/haproxy.ts';

const backend = (name: string) =>
  new Promise<http.Server>((resolve) => {
    const s = http.createServer((_req, res) => res.end(name));
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
const get = async (url: string) => (await fetch(url, { headers: { connection: 'close' } })).text();

test('haproxy balances over both replicas and routes around a dead one', async () => {
  const a = await backend('a');
  const b = await backend('b');
  const lb = await startHaproxy([a, b].map((s, i) => ({ name: `r${i}`, host: '127.0.0.1', port: (s.address() as AddressInfo).port })));
  try {
    // Health checks mark servers up after `rise` checks; until then haproxy may answer from either.
    await new Promise((r) => setTimeout(r, 1500));
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(await get(lb.url));
    assert.deepEqual([...seen].sort(), ['a', 'b']);
    a.closeAllConnections();
    await new Promise((r) => a.close(r));
    const after = [];
    for (let i = 0; i < 6; i++) after.push(await get(lb.url));
    assert.deepEqual(new Set(after), new Set(['b']), 'redispatched to the live replica');
  } finally {
    await lb.stop();
    b.close();
  }
});
