/**
 * MagicDNS as real clients (tailscaled v1.102.5, userspace) resolve it through their 100.100.100.100 resolver
 * (`tailscale dns query --json`) and report it (`tailscale dns status --json`): FQDNs and short names, A and
 * AAAA; renames, joins and deletes within 3 s; collision suffixes; extra records, search domains, split DNS,
 * global nameservers and "override local DNS"; names that follow the policy; refused settings.
 * Upstream resolvers are DNS servers of this test on loopback, so no query leaves the machine.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startDnsServer, type DnsServer } from '../../src/dns/server.ts';
import { rcode, rrType } from '../../src/dns/message.ts';
import { createHarness, type Daemon } from '../harness/tailscaled.ts';
import { withLogs } from '../helpers/failure.ts';
import { api, cli, cliAsync, spawnServer, type ChildServer } from '../helpers/server.ts';

const harness = createHarness();
let server: ChildServer;
let keys: { alice: string; bob: string };
let a: Daemon, b: Daemon, c: Daemon;
/** Upstreams: one for the split-DNS domain, one as the global nameserver; each remembers what it was asked. */
let corp: DnsServer, global: DnsServer;
const asked = { corp: [] as string[], global: [] as string[] };
const base = 'tail.example';
/** Resolution deadline for renames, joins and deletes on every peer. */
const liveMs = 3_000;

/** An upstream that answers every A query with `ip` and records the names asked. */
const upstream = (ip: string, log: string[]) =>
  startDnsServer({
    host: '127.0.0.1',
    port: 0,
    answer: (q) => {
      log.push(q.name);
      if (q.type !== rrType.A) return { rcode: rcode.noError, authoritative: true };
      return { rcode: rcode.noError, authoritative: true, answers: [{ name: q.rawName, type: 'A', ttl: 60, value: ip }] };
    },
  });

before(async () => {
  [corp, global] = [await upstream('192.0.2.10', asked.corp), await upstream('192.0.2.20', asked.global)];
  // No global nameserver until the test sets one: nothing may be forwarded off this machine.
  server = await spawnServer({ env: { TAILPLANE_DNS_BASE_DOMAIN: base, TAILPLANE_DNS_NAMESERVERS: '[]' } });
  await api(server, 'POST', '/api/v1/user', { name: 'alice', email: 'alice@example.com' });
  await api(server, 'POST', '/api/v1/user', { name: 'bob', email: 'bob@example.com' });
  const key = async (user: string) => (await api(server, 'POST', '/api/v1/preauthkey', { user, reusable: true })).json.preAuthKey.key as string;
  keys = { alice: await key('1'), bob: await key('2') };
  [a, b, c] = [await join('a', keys.alice), await join('b', keys.alice), await join('c', keys.bob)];
});

after(async () => {
  await harness.cleanup();
  await server?.stop();
  await corp?.close();
  await global?.close();
});

async function join(name: string, authKey: string, hostname = name): Promise<Daemon> {
  const d = await harness.start({ name });
  const r = await d.up({ loginServer: server.url, authKey, hostname, timeoutMs: 60_000 });
  assert.equal(r.code, 0, `tailscale up for ${name}: ${r.stderr}${r.stdout}`);
  return d;
}

interface Answer {
  rcode: string;
  values: string[];
}

/** `tailscale dns query --json NAME TYPE` on a client: the response code and the answers' data. */
async function query(d: Daemon, name: string, type: 'A' | 'AAAA' = 'A'): Promise<Answer> {
  const r = await d.cli(['dns', 'query', '--json', name, type]);
  if (r.code !== 0) return { rcode: `exit ${r.code}: ${r.stderr.trim()}`, values: [] };
  const j = JSON.parse(r.stdout) as { ResponseCode: string; Answers?: { Body: string }[] };
  return { rcode: j.ResponseCode, values: (j.Answers ?? []).map((x) => x.Body) };
}

/** Waits until `name` resolves on `d` to exactly `values` (or, with [], until it no longer exists). */
function resolvesTo(d: Daemon, name: string, values: string[], deadlineMs: number, type: 'A' | 'AAAA' = 'A') {
  const want = values.length ? `RCodeSuccess ${[...values].sort()}` : 'RCodeNameError ';
  return d.waitFor(async () => {
    const got = await query(d, name, type);
    return `${got.rcode} ${got.values.sort()}` === want ? got : undefined;
  }, deadlineMs, `${name} ${type} -> ${want} on ${d.name}`);
}

async function dnsStatus(d: Daemon): Promise<Record<string, any>> {
  const r = await d.cli(['dns', 'status', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const ips = async (d: Daemon) => {
  const [v4, v6] = await d.ip();
  return { v4: v4!, v6: v6! };
};
const step = (what: string, fn: () => Promise<void>) => withLogs(harness, () => server.log(), what, fn);

test('every client resolves each peer by FQDN and short name, A and AAAA (magicdns-aaaa granted)', () =>
  step('resolve', async () => {
    const all = [a, b, c];
    for (const d of all) {
      const status = await dnsStatus(d);
      assert.equal(status.CurrentTailnet.MagicDNSSuffix, base);
      assert.equal(status.CurrentTailnet.SelfDNSName, `${d.name}.${base}.`);
      assert.ok(status.SearchDomains.includes(base), `search domains ${status.SearchDomains}`);
      for (const p of all.filter((x) => x !== d)) {
        const { v4, v6 } = await ips(p);
        await resolvesTo(d, `${p.name}.${base}.`, [v4], 15_000);
        // AAAA for a peer that also has IPv4 comes only with the magicdns-aaaa capability.
        await resolvesTo(d, `${p.name}.${base}.`, [v6], 5_000, 'AAAA');
        await resolvesTo(d, p.name, [v4], 5_000);
      }
    }
  }));

test('a rename resolves on every peer within 3 s and the old name stops', () =>
  step('rename', async () => {
    const { v4 } = await ips(b);
    const r = cli(server, 'nodes', 'rename', 'b', 'bee');
    assert.equal(r.status, 0, r.stderr);
    const t0 = Date.now();
    for (const d of [a, b, c]) {
      await resolvesTo(d, `bee.${base}.`, [v4], liveMs - (Date.now() - t0));
      await resolvesTo(d, `b.${base}.`, [], liveMs);
    }
    console.log(`# rename resolved on 3 clients after ${Date.now() - t0} ms`);
  }));

test('a new node with a taken hostname gets a stable -1 suffix, resolves everywhere within 3 s, and stops on delete', () =>
  step('join-collide', async () => {
    const dup = await join('dup', keys.alice, 'a');
    const t0 = Date.now();
    const { v4 } = await ips(dup);
    const aIp = (await ips(a)).v4;
    for (const d of [a, b, c]) {
      await resolvesTo(d, `a-1.${base}.`, [v4], liveMs - (Date.now() - t0));
      await resolvesTo(d, `a.${base}.`, [aIp], liveMs);
    }
    console.log(`# new node resolved on 3 clients after ${Date.now() - t0} ms`);
    // Re-registering (a restart and a second `up`) keeps the name; it never takes over "a".
    await dup.restart();
    const again = await dup.up({ loginServer: server.url, authKey: keys.alice, hostname: 'a', timeoutMs: 60_000 });
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await dnsStatus(dup)).CurrentTailnet.SelfDNSName, `a-1.${base}.`);
    await resolvesTo(b, `a.${base}.`, [aIp], liveMs);
    const del = cli(server, 'nodes', 'delete', 'a-1');
    assert.equal(del.status, 0, del.stderr);
    const t1 = Date.now();
    for (const d of [a, b, c]) await resolvesTo(d, `a-1.${base}.`, [], liveMs);
    console.log(`# deleted node gone from 3 clients after ${Date.now() - t1} ms`);
    await dup.stop();
  }));

test('extra records, search domains, split DNS and global nameservers reach clients; override local DNS is explicit', () =>
  step('settings', async () => {
    const set = cli(
      server,
      'dns', 'set',
      '--extra-record', `db.${base}=A:192.0.2.5`,
      '--extra-record', `db.${base}=AAAA:fd7a:115c:a1e0::99`,
      '--search-domains', 'corp.example',
      '--split-dns', `corp.example=127.0.0.1:${corp.port}`,
      '--nameservers', `127.0.0.1:${global.port}`,
      '--override-local-dns',
    );
    assert.equal(set.status, 0, set.stderr);
    const status = await a.waitFor(async () => {
      const s = await dnsStatus(a);
      return s.Resolvers?.[0]?.Addr === `127.0.0.1:${global.port}` ? s : undefined;
    }, 10_000, 'global nameserver in dns status');
    assert.deepEqual(status.SplitDNSRoutes, { 'corp.example.': [{ Addr: `127.0.0.1:${corp.port}` }] });
    assert.deepEqual(status.SearchDomains, ['corp.example', base]);
    assert.equal(status.FallbackResolvers, undefined);
    assert.deepEqual(status.ExtraRecords.map((r: { Name: string; Value: string }) => `${r.Name}=${r.Value}`), [
      `db.${base}=192.0.2.5`,
      `db.${base}=fd7a:115c:a1e0::99`,
    ]);
    await resolvesTo(c, `db.${base}.`, ['192.0.2.5'], 5_000);
    await resolvesTo(c, `db.${base}.`, ['fd7a:115c:a1e0::99'], 5_000, 'AAAA');
    // Split DNS: corp.example goes to its own resolver, everything else to the global one.
    await resolvesTo(c, 'host.corp.example.', ['192.0.2.10'], 5_000);
    assert.ok(asked.corp.includes('host.corp.example') && !asked.global.includes('host.corp.example'));
    await resolvesTo(c, 'www.outside.test.', ['192.0.2.20'], 5_000);
    assert.ok(asked.global.includes('www.outside.test') && !asked.corp.includes('www.outside.test'));

    // Override off: the nameservers become fallbacks only, and the device keeps its own DNS.
    assert.equal(cli(server, 'dns', 'set', '--override-local-dns=false').status, 0);
    const off = await a.waitFor(async () => {
      const s = await dnsStatus(a);
      return s.FallbackResolvers?.[0]?.Addr === `127.0.0.1:${global.port}` ? s : undefined;
    }, 10_000, 'nameserver as a fallback');
    assert.equal(off.Resolvers, undefined);
    assert.equal((await api(server, 'GET', '/api/v1/dns')).json.dns.overrideLocalDns, false);
  }));

test('bad settings are refused naming the field, and nothing already pushed changes', () =>
  step('refused', async () => {
    const before = (await api(server, 'GET', '/api/v1/dns')).json.dns;
    const clientBefore = await dnsStatus(a);
    // The CLI prints the server's message.
    // cliAsync: a blocked event loop would let the API client's idle keep-alive socket go stale.
    const viaCli = await cliAsync(server, 'dns', 'set', '--split-dns', 'corp.example.b@d=127.0.0.1');
    assert.notEqual(viaCli.status, 0);
    assert.match(viaCli.stderr, /dns\.splitDns: "corp\.example\.b@d" is not a DNS name/);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ baseDomain: 'not a domain!' }, /^dns\.baseDomain: "not a domain!" is not a DNS name$/],
      [{ baseDomain: 'tail.example.' + 'x'.repeat(64) }, /^dns\.baseDomain: /],
      [{ nameservers: ['not-an-ip'] }, /^dns\.nameservers: "not-an-ip" is not an IP address, IP:port or https:\/\/ URL$/],
      [{ nameservers: ['10.0.0.300'] }, /^dns\.nameservers: "10\.0\.0\.300"/],
      [{ splitDns: { 'corp.example.123': ['127.0.0.1'] } }, /^dns\.splitDns: "corp\.example\.123" is not a DNS name$/],
      [{ splitDns: { 'corp.example': ['corp-dns'] } }, /^dns\.splitDns\["corp\.example"\]: "corp-dns" is not an IP/],
      [{ searchDomains: ['-bad.example'] }, /^dns\.searchDomains: "-bad\.example" is not a DNS name$/],
      [{ extraRecords: [{ name: 'x.tail.example', type: 'A', value: 'fd7a::1' }] }, /^dns\.extraRecords\["x\.tail\.example"\]: "fd7a::1" is not an IPv4 address$/],
    ];
    for (const [patch, message] of cases) {
      const r = await api(server, 'PUT', '/api/v1/dns', { ...before, ...patch });
      assert.equal(r.status, 400, `${JSON.stringify(patch)} was accepted`);
      assert.match(r.json.message, message);
    }
    assert.deepEqual((await api(server, 'GET', '/api/v1/dns')).json.dns, before);
    // A real change afterwards still arrives, so the client is listening: the refused ones never reached it.
    assert.equal((await api(server, 'PUT', '/api/v1/dns', { ...before, searchDomains: ['corp.example', 'marker.example'] })).status, 200);
    const after = await a.waitFor(async () => {
      const s = await dnsStatus(a);
      return s.SearchDomains.includes('marker.example') ? s : undefined;
    }, 10_000, 'the marker change');
    assert.deepEqual({ ...after, SearchDomains: clientBefore.SearchDomains }, clientBefore);
  }));

test('names follow the policy: a node that may not see a peer cannot resolve it', () =>
  step('policy', async () => {
    const policy = `{ "acls": [ { "action": "accept", "src": ["alice@example.com"], "dst": ["alice@example.com:*"] } ] }`;
    const r = await api(server, 'PUT', '/api/v1/policy', { policy });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const [aIp, beeIp] = [(await ips(a)).v4, (await ips(b)).v4];
    await resolvesTo(c, `a.${base}.`, [], 10_000);
    await resolvesTo(c, `bee.${base}.`, [], 5_000);
    await resolvesTo(a, `c.${base}.`, [], 5_000);
    await resolvesTo(a, `bee.${base}.`, [beeIp], 5_000);
    await resolvesTo(b, `a.${base}.`, [aIp], 5_000);
  }));
