/** IP allocation: distinct addresses inside the configured prefixes, reserved ranges skipped. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cidrContains } from '../../src/net/ip.ts';
import { createIpAllocator } from '../../src/state/ipam.ts';
import { inProcessServer } from '../helpers/server.ts';

const hex = (n: number, width = 64) => n.toString(16).padStart(width, '0');

for (const allocation of ['sequential', 'random'] as const) {
  test(`1,000 concurrent registrations get 1,000 distinct addresses (${allocation})`, async () => {
    const prefixes = { v4: '100.64.0.0/20', v6: 'fd7a:115c:a1e0:ab12::/64', allocation };
    const server = await inProcessServer({ prefixes });
    try {
      const t = server.tailnet;
      const user = t.users.create({ name: 'ipam' });
      const nodes = await Promise.all(
        Array.from({ length: 1000 }, async (_, i) => {
          await new Promise((r) => setImmediate(r));
          return t.nodes.register({
            machineKey: `mkey:${hex(i + 1)}`,
            nodeKey: `nodekey:${hex(i + 1)}`,
            hostname: `host-${i}`,
            hostinfo: {},
            userId: user.id,
            tags: [],
            ephemeral: false,
            method: 'authkey',
          });
        }),
      );
      const v4 = new Set(nodes.map((n) => n.ipv4));
      const v6 = new Set(nodes.map((n) => n.ipv6));
      assert.equal(v4.size, 1000);
      assert.equal(v6.size, 1000);
      for (const n of nodes) {
        assert.ok(cidrContains(prefixes.v4, `${n.ipv4}/32`), n.ipv4);
        assert.ok(cidrContains(prefixes.v6, `${n.ipv6}/128`), n.ipv6);
      }
      assert.equal(new Set(nodes.map((n) => n.givenName)).size, 1000);
    } finally {
      await server.close();
    }
  });
}

test('reserved addresses are skipped and a full prefix fails clearly', () => {
  const alloc = createIpAllocator('100.100.100.96/29', 'fd7a:115c:a1e0::/120', 'sequential');
  const used = new Set<string>();
  const got: string[] = [];
  for (let i = 0; i < 5; i++) {
    const { ipv4, ipv6 } = alloc.next((ip) => used.has(ip));
    used.add(ipv4);
    used.add(ipv6);
    got.push(ipv4);
  }
  // .96 is the network and .103 the broadcast address; .100 is MagicDNS's address.
  assert.deepEqual(got, ['100.100.100.97', '100.100.100.98', '100.100.100.99', '100.100.100.101', '100.100.100.102']);
  assert.throws(() => alloc.next((ip) => used.has(ip)), /no free address/);
});
