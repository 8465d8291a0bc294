// `nodes export` writes the live topology; `policy compile --topology` turns it into exactly what each node is sent.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after as teardown, before as setup, test } from 'node:test';
import { createPolicyView } from '../../src/state/policy-view.ts';
import { api, cli, cliAsync, inProcessServer } from '../helpers/server.ts';
import { before, failing, seedTailnet } from './fixture.ts';

let server: Awaited<ReturnType<typeof inProcessServer>>;
setup(async () => {
  server = await inProcessServer();
  seedTailnet(server.tailnet);
});
teardown(() => server.close());

const nodeByName = (name: string) => server.tailnet.nodes.list().find((n) => n.givenName === name)!;
const offline = { url: 'http://127.0.0.1:9', apiKey: 'unused' };

test('GET /api/v1/topology is the policy Topology shape: users, and nodes with a user or tags', async () => {
  const res = await api(server, 'GET', '/api/v1/topology');
  assert.equal(res.status, 200);
  const n = (name: string, owner: object) => {
    const node = nodeByName(name);
    return { id: node.id, name, ...owner, ipv4: node.ipv4, ipv6: node.ipv6, approvedRoutes: [] };
  };
  const [alice, bob] = [server.tailnet.users.byName('alice')!, server.tailnet.users.byName('bob')!];
  assert.deepEqual(res.json, {
    users: [{ id: alice.id, name: 'alice', email: 'alice@example.com' }, { id: bob.id, name: 'bob' }],
    nodes: [n('alice-laptop', { user: 'alice', tags: [] }), n('bob-laptop', { user: 'bob', tags: [] }), n('web', { tags: ['tag:server'] })],
  });
});

test('nodes export -> policy compile --topology gives each node the filter, SSH policy and peers the server sends', async () => {
  const exported = await cliAsync(server, 'nodes', 'export', '-o', 'json');
  assert.equal(exported.status, 0, exported.stderr);
  const topoFile = join(server.dataDir, 'topology.json');
  const policyFile = join(server.dataDir, 'policy.hujson');
  writeFileSync(topoFile, exported.stdout);
  writeFileSync(policyFile, before);

  // Offline: the server is not asked (its URL is only the SSH check-mode prefix).
  const r = cli(offline, 'policy', 'compile', '-f', policyFile, '--topology', topoFile, '--server-url', server.url, '-o', 'json');
  assert.equal(r.status, 0, r.stderr);
  const compiled = JSON.parse(r.stdout) as { id: number; node: string; packetFilter: unknown[]; sshPolicy: unknown; peers: string[] }[];
  assert.deepEqual(compiled.map((c) => [c.node, c.peers]), [
    ['alice-laptop', ['web']],
    ['bob-laptop', ['web']],
    ['web', ['alice-laptop', 'bob-laptop']],
  ]);
  const web = compiled.find((c) => c.node === 'web')!;
  const laptop = nodeByName('alice-laptop');
  assert.deepEqual(web.packetFilter[0], {
    SrcIPs: [laptop.ipv4, laptop.ipv6],
    DstPorts: [nodeByName('web').ipv4, nodeByName('web').ipv6].flatMap((IP) => [22, 443].map((p) => ({ IP, Ports: { First: p, Last: p } }))),
  });

  // The same policy set live: the compile output is byte for byte what the server's policy view sends.
  server.tailnet.setPolicy(before);
  const live = createPolicyView(server.tailnet, { serverUrl: server.url }).current();
  for (const c of compiled) {
    const view = live.forNode(c.id);
    assert.deepEqual(c.packetFilter, view.packetFilter, `${c.node} packet filter`);
    assert.deepEqual(c.sshPolicy, view.sshPolicy, `${c.node} SSH policy`);
  }
  // https: the node fetches it over Noise, which its client dials only for https URLs.
  assert.match(JSON.stringify(web.sshPolicy), /holdAndDelegate":"https:\/\/127\.0\.0\.1:\d+\/machine\/ssh\/action/);
});

test('policy compile --node prints a readable summary; an unknown node or a bad topology file is an error (1), not a usage error', async () => {
  const topoFile = join(server.dataDir, 'summary-topology.json');
  const policyFile = join(server.dataDir, 'summary-policy.hujson');
  writeFileSync(topoFile, JSON.stringify((await api(server, 'GET', '/api/v1/topology')).json));
  writeFileSync(policyFile, before);
  const r = cli(offline, 'policy', 'compile', '-f', policyFile, '--topology', topoFile, '--node', 'web');
  assert.equal(r.status, 0, r.stderr);
  const web = nodeByName('web');
  assert.equal(
    r.stdout,
    [
      `web (id ${web.id}, tag:server) ${web.ipv4}, ${web.ipv6}`,
      '  peers: alice-laptop, bob-laptop',
      '  accepts:',
      '    from alice-laptop to web:22, web:443 any',
      '    from bob-laptop to web:443 any',
      '  ssh:',
      '    check from alice-laptop as root',
      '',
    ].join('\n'),
  );
  const unknown = cli(offline, 'policy', 'compile', '-f', policyFile, '--topology', topoFile, '--node', 'nope');
  assert.equal(unknown.status, 1, 'a name that is not there is "not found" (1), as for every command');
  assert.match(unknown.stderr, /node "nope" is not in/);
  const badTopo = join(server.dataDir, 'bad-topology.json');
  writeFileSync(badTopo, JSON.stringify({ users: [], nodes: [{ id: 1, name: 'x', tags: [], ipv4: 7 }] }));
  const bad = cli(offline, 'policy', 'compile', '-f', policyFile, '--topology', badTopo);
  assert.equal(bad.status, 1, 'a file that cannot be used is an error (1), not a malformed command line (2)');
  assert.match(bad.stderr, /bad-topology\.json: nodes\[0\]\.ipv4: expected a string/);
  // The server would refuse a policy whose tests fail on this tailnet; so does compile.
  writeFileSync(policyFile, failing);
  const refused = cli(offline, 'policy', 'compile', '-f', policyFile, '--topology', topoFile);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /summary-policy\.hujson:\d+:\d+: test failed: bob@ should accept tag:server:22/);
});
