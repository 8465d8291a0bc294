/**
 * Exit codes of every CLI command against a real server: a malformed command line is a usage error (2; 1 for
 * plan, apply and drift, where 2 means "changes"), and a user, node, key or file that does not exist is an
 * error (1). The case table must name every command, so a new command cannot skip it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { allCommands, find } from '../../src/cli/main.ts';
import { cliAsync, spawnServer, type ChildServer } from '../helpers/server.ts';

const commands = await allCommands();

let server: ChildServer;
before(async () => {
  server = await spawnServer({ env: { TAILPLANE_DERP_ENABLED: 'false' } });
});
after(async () => {
  await server?.stop();
});

const missing = '/nonexistent/tailplane-input.hujson';

/** Per command: a usage error, and (where the command names something) references to nothing. */
const cases: Record<string, { usage: string[]; notFound?: string[][] }> = {
  serve: { usage: ['--listen'], notFound: [['--config', missing]] },
  health: { usage: ['-o', 'xml'] },
  version: { usage: ['-o', 'xml'] },
  'users create': { usage: [] },
  'users list': { usage: ['-o', 'xml'] },
  'users rename': { usage: [], notFound: [['nobody', '--new-name', 'x']] },
  'users delete': { usage: [], notFound: [['nobody'], ['--id', '999']] },
  'nodes list': { usage: ['-o', 'xml'] },
  'nodes show': { usage: [], notFound: [['nosuch'], ['999']] },
  'nodes rename': { usage: [], notFound: [['nosuch', 'other']] },
  'nodes expire': { usage: [], notFound: [['nosuch']] },
  'nodes delete': { usage: [], notFound: [['nosuch'], ['999']] },
  'nodes tag': { usage: [], notFound: [['nosuch', '-t', 'tag:a']] },
  'nodes approve-routes': { usage: [], notFound: [['nosuch', '-r', '10.0.0.0/24']] },
  'nodes list-routes': { usage: ['-o', 'xml'], notFound: [['--id', 'nosuch']] },
  'nodes export': { usage: ['--bogus'] },
  'nodes register': { usage: ['--auth-id', 'abc'], notFound: [['--user', 'nobody', '--auth-id', 'abc'], ['--user', '1', '--auth-id', 'nosuch']] },
  'preauthkeys create': { usage: ['-e', 'soon'], notFound: [['--user', 'nobody']] },
  'preauthkeys list': { usage: ['-o', 'xml'], notFound: [['--user', 'nobody']] },
  'preauthkeys expire': { usage: ['-i', 'abc'], notFound: [['-i', '999']] },
  'preauthkeys delete': { usage: [], notFound: [['-i', '999']] },
  'apikeys create': { usage: ['-e', 'soon'] },
  'apikeys list': { usage: ['-o', 'xml'] },
  'apikeys expire': { usage: [], notFound: [['-p', 'nosuchprefix']] },
  'apikeys delete': { usage: [], notFound: [['-p', 'nosuchprefix']] },
  'oauth-clients create': { usage: [] },
  'oauth-clients list': { usage: ['-o', 'xml'] },
  'oauth-clients delete': { usage: [], notFound: [['999']] },
  'routes list': { usage: ['-o', 'xml'] },
  'dns get': { usage: ['-o', 'xml'] },
  'dns set': { usage: ['--extra-record', 'nonsense'] },
  'policy get': { usage: ['-o', 'xml'] },
  'policy set': { usage: [], notFound: [['-f', missing]] },
  'policy check': { usage: [], notFound: [['-f', missing], ['-f', missing, '--offline']] },
  'policy diff': { usage: [], notFound: [['-f', missing]] },
  'policy compile': { usage: [], notFound: [['-f', missing, '--topology', missing]] },
  'ssh list': { usage: ['-o', 'xml'] },
  'ssh approve': { usage: [], notFound: [['nosuch']] },
  'ssh deny': { usage: [], notFound: [['nosuch']] },
  sync: { usage: ['--mode', 'sideways'], notFound: [['-f', missing, '--once']] },
  'sync status': { usage: ['-o', 'xml'] },
  backup: { usage: [] },
  migrate: { usage: ['--from', 'mysql:x', '--to', 'postgres://u@h/db'], notFound: [['--from', `sqlite:${missing}`, '--to', 'postgres://u@127.0.0.1:1/db']] },
  'audit list': { usage: ['-o', 'xml'] },
  'audit export': { usage: ['--bogus'] },
  'audit verify': { usage: ['--bogus'] },
  restore: { usage: ['--from', missing], notFound: [['--from', missing, '--data-dir', '/nonexistent/tailplane-restore']] },
  plan: { usage: ['--bogus'], notFound: [['-f', missing]] },
  apply: { usage: [], notFound: [['-f', missing, '--auto-approve']] },
  drift: { usage: ['-f'], notFound: [['-f', missing]] },
};
/** Commands whose 2 means "there are changes": every failure, usage included, is 1. */
const engine = new Set(['plan', 'apply', 'drift']);

test('every command and alias is found from its own module, by its first word', async () => {
  for (const c of commands) {
    for (const words of [c.path, ...(c.aliases ?? [])]) {
      const found = await find([...words, '--help']);
      assert.equal(found?.command, c, `tailplane ${words.join(' ')}`);
      assert.deepEqual(found.rest, ['--help']);
    }
  }
  assert.equal(await find(['nosuch']), undefined);
  assert.equal(await find(['constructor']), undefined, 'only the table\'s own words');
});

/** Runs at most `width` CLI processes at a time (two cores are shared with other tests). */
async function inBatches<T>(jobs: (() => Promise<T>)[], width = 3): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < jobs.length; i += width) out.push(...(await Promise.all(jobs.slice(i, i + width).map((j) => j()))));
  return out;
}

test('every command: usage errors exit 2 (1 for plan/apply/drift), not-found exits 1, each with one clear line', async () => {
  assert.deepEqual(Object.keys(cases).sort(), commands.map((c) => c.path.join(' ')).sort(), 'the table names every command');
  // A topology that exists, so compile's --node lookup is what fails.
  const topology = join(server.dataDir, 'topology.json');
  writeFileSync(topology, JSON.stringify({ users: [], nodes: [] }));
  const policy = join(server.dataDir, 'policy.hujson');
  writeFileSync(policy, '{}');
  cases['policy compile']!.notFound!.push(['-f', policy, '--topology', topology, '--node', 'nosuch']);
  await cliAsync(server, 'users', 'create', 'someone');

  const runs = Object.entries(cases).flatMap(([path, c]) => [
    { path, args: c.usage, want: engine.has(path) ? 1 : 2 },
    ...(c.notFound ?? []).map((args) => ({ path, args, want: 1 })),
  ]);
  const results = await inBatches(runs.map((r) => () => cliAsync(server, ...r.path.split(' '), ...r.args)));
  const wrong = runs.flatMap((r, i) => {
    const res = results[i]!;
    const problems: string[] = [];
    if (res.status !== r.want) problems.push(`exit ${res.status}, want ${r.want}`);
    if (!/^tailplane: \S/m.test(res.stderr)) problems.push('no "tailplane: …" message');
    if (/\n\s+at /.test(res.stderr)) problems.push('a stack trace');
    return problems.length ? [`tailplane ${r.path} ${r.args.join(' ')}: ${problems.join(', ')}\n${res.stderr.trim()}`] : [];
  });
  assert.deepEqual(wrong, []);
});
