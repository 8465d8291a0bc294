/** DERP maps: the embedded region derived from the server URL, validation (trap T30), loading and merging files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedDerpMap, loadDerpMap, mergeDerpMaps, validateDerpMap } from '../../src/derp/index.ts';

test('embedded map for a plain-http loopback server', () => {
  const m = embeddedDerpMap({ serverUrl: 'http://127.0.0.1:8080', stunPort: 3478, insecureForTests: true });
  assert.deepEqual(m, {
    Regions: {
      '999': {
        RegionID: 999,
        RegionCode: 'tailplane',
        RegionName: 'Tailplane embedded DERP',
        Nodes: [{
          Name: '999a', RegionID: 999, HostName: '127.0.0.1', IPv4: '127.0.0.1', IPv6: 'none',
          DERPPort: 8080, STUNPort: 3478, InsecureForTests: true,
        }],
      },
    },
    omitDefaultRegions: true,
  });
});

test('embedded map: https default port, DNS names, IPv6 literals, STUN off is -1 (never 0)', () => {
  const dns = embeddedDerpMap({ serverUrl: 'https://ts.example.com', regionId: 901, regionCode: 'x' }).Regions['901']!;
  assert.deepEqual(dns.Nodes[0], { Name: '901a', RegionID: 901, HostName: 'ts.example.com', DERPPort: 443, STUNPort: -1 });
  const v6 = embeddedDerpMap({ serverUrl: 'http://[::1]:9000', stunPort: 0 }).Regions['999']!.Nodes[0]!;
  assert.deepEqual([v6.HostName, v6.IPv4, v6.IPv6, v6.DERPPort, v6.STUNPort], ['::1', 'none', '::1', 9000, -1]);
  const local = embeddedDerpMap({ serverUrl: 'http://localhost:80', ipv6: '::1' }).Regions['999']!.Nodes[0]!;
  assert.deepEqual([local.IPv4, local.IPv6, local.DERPPort], ['127.0.0.1', '::1', 80]);
  assert.throws(() => embeddedDerpMap({ serverUrl: 'ftp://x' }), /http/);
});

test('validation rejects null regions, mismatched ids and nodes without HostName', () => {
  const node = { Name: '1a', RegionID: 1, HostName: 'h' };
  const region = { RegionID: 1, RegionCode: 'r', RegionName: 'R', Nodes: [node] };
  assert.doesNotThrow(() => validateDerpMap({ Regions: { '1': region } }));
  assert.throws(() => validateDerpMap({ Regions: { '1': null } }), /region 1 is null/);
  assert.throws(() => validateDerpMap({ Regions: { '2': region } }), /does not match/);
  assert.throws(() => validateDerpMap({ Regions: { '0': { ...region, RegionID: 0 } } }), /positive/);
  assert.throws(() => validateDerpMap({ Regions: { '1': { ...region, Nodes: [{ ...node, HostName: '' }] } } }), /HostName/);
  assert.throws(() => validateDerpMap({ Regions: { '1': { ...region, Nodes: [] } } }), /non-empty/);
  assert.throws(() => validateDerpMap({ Regions: { '1': { ...region, Nodes: [{ ...node, STUNPort: 70000 }] } } }), /STUNPort/);
  assert.throws(() => validateDerpMap([]), /Regions/);
});

test('loadDerpMap reads and validates a file; merge lets later regions win', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'derpmap-'));
  const file = join(dir, 'derp.json');
  const ext = { Regions: { '900': { RegionID: 900, RegionCode: 'ext', RegionName: 'Ext', Nodes: [{ Name: '900a', RegionID: 900, HostName: 'derp.example.net' }] } } };
  await writeFile(file, JSON.stringify(ext));
  const loaded = await loadDerpMap(file);
  assert.deepEqual(loaded, ext);
  const merged = mergeDerpMaps(embeddedDerpMap({ serverUrl: 'http://127.0.0.1:1' }), loaded);
  assert.deepEqual(Object.keys(merged.Regions).sort(), ['900', '999']);
  assert.equal(merged.omitDefaultRegions, true);
  await writeFile(file, '{"Regions": {"900": null}}');
  await assert.rejects(loadDerpMap(file), /derp\.json: region 900 is null/);
  await writeFile(file, '{oops');
  await assert.rejects(loadDerpMap(file), /derp\.json/);
});
