// Continuous sync end to end: a real git repository (bare remote + working clone) in a temp dir, a real server,
// `tailplane sync` as a child process, and a local HTTP receiver for its signed webhooks. Commits are applied within
// one interval, a commit whose policy test fails is refused with its position, a fix recovers, a hand retag is
// reverted (enforce) or reported (report), two processes elect one, and a SIGKILL mid-round leaves no half-apply.
// Each applied round is one audit entry naming its commit, and the sync process's /metrics show rounds and commit.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { defaultConfig } from '../../src/config/config.ts';
import { freePort } from '../harness/tailscaled.ts';
import { checkMetrics, ensurePromtool, scrape, seriesValue } from '../helpers/promtool.ts';
import { api, cliAsync, inProcessServer, repoRoot, spawnServer, tempDir } from '../helpers/server.ts';

const secret = 'webhook-test-secret';
const intervalMs = 1000;
const hex = (n: number) => n.toString(16).padStart(64, '0');

/** A scrape that promtool accepts without a complaint. */
async function lintedScrape(url: string): Promise<string> {
  const text = await scrape(url);
  const lint = checkMetrics(text);
  assert.equal(lint.status, 0, `promtool check metrics:\n${lint.output}`);
  assert.equal(lint.output.trim(), '', 'promtool has no lint complaints');
  return text;
}

interface Hook {
  event: string;
  body: any;
  signed: boolean;
}

/** A local webhook receiver that checks each delivery's HMAC-SHA256 signature over the raw body. */
async function webhookReceiver() {
  const events: Hook[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const want = Buffer.from(`sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`);
      const got = Buffer.from(String(req.headers['x-tailplane-signature'] ?? ''));
      events.push({ event: String(req.headers['x-tailplane-event']), body: JSON.parse(raw), signed: got.length === want.length && timingSafeEqual(got, want) });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, events, close: () => new Promise((r) => server.close(r)) };
}

/** A bare remote and a working clone; `commit` writes the desired state, commits and pushes to main. */
function gitRepo(dir: string) {
  const remote = join(dir, 'remote.git');
  const work = join(dir, 'work');
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd: work, encoding: 'utf8' }).trim();
  execFileSync('git', ['init', '--quiet', '--bare', remote]);
  mkdirSync(work);
  git('init', '--quiet');
  git('remote', 'add', 'origin', remote);
  mkdirSync(join(work, 'tailnet'));
  return {
    remote,
    commit(text: string, message: string): { sha: string; pushedAt: number } {
      writeFileSync(join(work, 'tailnet', 'desired.hujson'), text);
      git('add', '-A');
      git('commit', '--quiet', '-m', message);
      git('push', '--quiet', '--force', 'origin', 'HEAD:main');
      return { sha: git('rev-parse', 'HEAD'), pushedAt: Date.now() };
    },
  };
}

/** Desired states as the file people edit: JSON5 with comments; `extra` lines go into the top-level object. */
const desired = (o: { tests: string; dns?: string; users?: string[] }) => `{
  // The clinic tailnet, managed by tailplane sync.
  users: [${['ada', 'bo', ...(o.users ?? [])].map((u) => `{ name: "${u}" }`).join(', ')}],
  groups: { "group:ops": ["ada"] },
  tags: { "tag:db": ["group:ops"], "tag:temp": ["group:ops"] },
  acls: [
    { action: "accept", src: ["group:ops"], dst: ["tag:db:5432"] },
  ],
  tests: [
${o.tests}
  ],
  nodes: [{ name: "db1", tags: ["tag:db"] }],
  dns: { nameservers: [${o.dns ?? '"1.1.1.1"'}] },
}
`;
const passing = '    { src: "ada@", accept: ["tag:db:5432"] },';
const failing = `${passing}\n    { src: "bo@", accept: ["tag:db:5432"] },`;

async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('tailplane sync converges a tailnet to Git, refuses a failing commit, reverts or reports hand changes, survives SIGKILL', async (t) => {
  ensurePromtool();
  const server = await inProcessServer({ derp: { ...defaultConfig().derp, enabled: false } });
  const dir = tempDir('tailplane-sync-');
  const repo = gitRepo(dir);
  const hooks = await webhookReceiver();
  const procs: { child: ChildProcess; log: () => string }[] = [];
  const sync = (...args: string[]) => {
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'bin', 'tailplane.js'), 'sync', '--git', repo.remote, '--ref', 'main', '--path', 'tailnet/desired.hujson',
        '--interval', `${intervalMs / 1000}s`, '--webhook-url', hooks.url, '--cache-dir', join(dir, `cache-${procs.length}`), ...args],
      { env: { ...process.env, TAILPLANE_URL: server.url, TAILPLANE_API_KEY: server.apiKey, TAILPLANE_SYNC_WEBHOOK_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    child.stdout!.on('data', (d) => (log += d));
    child.stderr!.on('data', (d) => (log += d));
    const p = { child, log: () => log };
    procs.push(p);
    return p;
  };
  const stop = async (p: { child: ChildProcess }, signal: NodeJS.Signals = 'SIGTERM') => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return;
    const exited = new Promise((r) => p.child.once('exit', r));
    p.child.kill(signal);
    await exited;
  };
  const status = async () => (await api(server, 'GET', '/api/v1/sync')).json as { status: any; leader: any };
  /** The status once a round at this commit ended so (applied: the commit is the last good one). */
  const roundAt = (sha: string, result: 'applied' | 'failed') => async () => {
    const s = (await status()).status;
    if (result === 'applied') return s?.lastGood?.revision === sha ? s : undefined;
    return s?.lastRound?.revision === sha && s.lastRound.result === result ? s : undefined;
  };
  /** The webhook's drift event of the round that applied this commit. */
  const appliedEvent = (sha: string) => hooks.events.find((e) => e.event === 'drift' && e.body.round.revision === sha && e.body.round.result === 'applied');
  const db1 = () => server.tailnet.nodes.list().find((n) => n.hostname === 'db1')!;
  const liveUsers = () => server.tailnet.users.list().map((u) => u.name).sort();
  try {
    server.tailnet.nodes.register({
      machineKey: `mkey:${hex(1)}`, nodeKey: `nodekey:${hex(1)}`, hostname: 'db1', hostinfo: {}, userId: null, tags: ['tag:temp'], ephemeral: false, method: 'authkey',
    });
    const v1 = repo.commit(desired({ tests: passing }), 'v1: the clinic tailnet');
    const metricsAddr = `127.0.0.1:${await freePort()}`;
    const enforce = sync('--mode', 'enforce', '--metrics-listen', metricsAddr);
    const metrics = async () => {
      const text = await lintedScrape(`http://${metricsAddr}/metrics`);
      return (series: string) => seriesValue(text, series);
    };
    /** The audit entries that name this commit: the round's changes, then the round. */
    const auditOf = (sha: string) => server.tailnet.audit.list({}).entries.filter((e) => e.source.endsWith(` git:${sha}`));

    await t.test('a commit is applied, and the next one within one interval', async () => {
      // The first round includes the sync process's start (slow on a loaded machine); the interval is timed below.
      await waitFor('v1 applied', roundAt(v1.sha, 'applied'), 30_000);
      assert.deepEqual(db1().tags, ['tag:db']);
      assert.deepEqual(liveUsers(), ['ada', 'bo']);
      const v2 = repo.commit(desired({ tests: passing, dns: '"9.9.9.9"' }), 'v2: another resolver');
      const s = await waitFor('v2 applied', roundAt(v2.sha, 'applied'));
      const round = (await waitFor('v2 drift event', () => appliedEvent(v2.sha))).body.round;
      const startedAfter = Date.parse(round.startedAt) - v2.pushedAt;
      assert.ok(startedAfter <= intervalMs + 250, `the round that applied v2 started ${startedAfter} ms after the push`);
      assert.deepEqual(server.tailnet.dns().nameservers, ['9.9.9.9']);
      assert.equal(s.lastGood.revision, v2.sha);
      // The audit log names sync as the door of the round's change.
      const dnsEntries = server.tailnet.audit.list({ object: 'dns' }).entries;
      assert.deepEqual([dnsEntries.at(-1)!.door, dnsEntries.at(-1)!.action], ['sync', 'dns.set']);
    });

    await t.test('each applied round is one audit entry naming its commit; its changes name the commit too', async () => {
      const v2 = (await status()).status.lastGood.revision as string;
      assert.deepEqual(auditOf(v1.sha).map((e) => `${e.door} ${e.action} ${e.object}`), [
        'sync user.create user:1', 'sync user.create user:2', 'sync policy.set policy', 'sync node.update node:1', `sync revision.apply git:${v1.sha}`,
      ]);
      assert.deepEqual(auditOf(v2).map((e) => `${e.action} ${e.summary}`), ['dns.set nameservers: ["1.1.1.1"] → ["9.9.9.9"]', 'revision.apply applied 1 operation: dns.set']);
      // Through the CLI, as an operator looks a commit up.
      const listed = await cliAsync(server, 'audit', 'list', '--object', `git:${v2}`, '-o', 'json');
      assert.equal(listed.status, 0, listed.stderr);
      const [round, ...more] = JSON.parse(listed.stdout);
      assert.deepEqual([more.length, round.door, round.action, round.actor], [0, 'sync', 'revision.apply', `apikey:${server.apiKey.slice(10, 22)}`]);
      assert.match(round.source, new RegExp(`^127\\.0\\.0\\.1 git:${v2}$`));
      const table = await cliAsync(server, 'audit', 'list', '--object', `git:${v2}`);
      assert.match(table.stdout, new RegExp(`sync +127\\.0\\.0\\.1 git:${v2} +revision\\.apply +git:${v2} +applied 1 operation: dns\\.set`));
    });

    await t.test('the sync process serves /metrics: rounds by result, the live commit, the last success, leadership', async () => {
      const s = (await status()).status;
      const m = await metrics();
      assert.equal(m(`tailplane_sync_revision_info{revision="${s.lastGood.revision}"}`), 1);
      assert.ok(m('tailplane_sync_rounds_total{result="applied"}')! >= 2, 'v1 and v2 applied');
      assert.equal(m('tailplane_sync_rounds_total{result="failed"}'), 0);
      assert.ok(m('tailplane_sync_last_success_timestamp_seconds')! * 1000 >= Date.parse(s.lastGood.at) - 1);
      assert.ok(m('tailplane_sync_round_duration_seconds_count')! >= 2);
      assert.equal(m('tailplane_sync_consecutive_failures'), 0);
      assert.equal(m('tailplane_sync_leader'), 1);
      assert.ok(m('process_cpu_user_seconds_total')! > 0, 'the process metrics of the sync daemon');
      // A metrics address that is taken, or no address at all, stops sync before its first round.
      const source = ['sync', '--git', repo.remote, '--path', 'tailnet/desired.hujson', '--cache-dir', join(dir, 'cache-metrics')];
      const taken = await cliAsync(server, ...source, '--metrics-listen', metricsAddr);
      assert.equal(taken.status, 1, taken.stderr);
      assert.match(taken.stderr, new RegExp(`cannot listen on TCP ${metricsAddr} for metrics: the address is already in use\\. Give --metrics-listen a free host:port\\.`));
      const bad = await cliAsync(server, ...source, '--metrics-listen', 'nowhere');
      assert.deepEqual([bad.status, bad.stderr.trim().split('\n').length], [2, 1], bad.stderr);
      assert.match(bad.stderr, /invalid --metrics-listen "nowhere": expected host:port/);
      assert.equal((await status()).leader.holder, s.holder, 'neither took the lead');
    });

    const goodPolicy = () => server.tailnet.policy()!.text;
    const before = goodPolicy();
    let v3: { sha: string };
    await t.test('a commit whose policy test fails is not applied; the status names the commit and file:line:col', async () => {
      v3 = repo.commit(desired({ tests: failing, dns: '"8.8.8.8"' }), 'v3: bo needs the database');
      const s = await waitFor('v3 refused', roundAt(v3.sha, 'failed'));
      // Line 11 of the file is the second test; its accept entry starts at column 28.
      assert.deepEqual(s.lastRound.error.problems[0], {
        where: 'tailnet/desired.hujson:11:28', file: 'tailnet/desired.hujson', line: 11, col: 28,
        detail: 'test failed: bo@ should accept tag:db:5432 but it is denied',
      });
      assert.match(s.lastRound.error.message, /tailnet\/desired\.hujson:11:28: test failed/);
      assert.equal(s.lastGood.revision !== v3.sha, true);
      assert.equal(goodPolicy(), before, 'the live policy is unchanged');
      assert.deepEqual(server.tailnet.dns().nameservers, ['9.9.9.9'], 'nothing else of the refused commit was applied');
      const json = await cliAsync(server, 'sync', 'status', '-o', 'json');
      assert.equal(JSON.parse(json.stdout).status.lastRound.revision, v3.sha, json.stderr);
      const table = await cliAsync(server, 'sync', 'status');
      assert.match(table.stdout, new RegExp(`revision: ${v3.sha}\\nresult: failed`));
      // Counted as a failure; the live commit stays the last good one; no audit entry says v3 was applied.
      const m = await metrics();
      assert.ok(m('tailplane_sync_rounds_total{result="failed"}')! >= 1);
      assert.ok(m('tailplane_sync_consecutive_failures')! >= 1);
      assert.equal(m(`tailplane_sync_revision_info{revision="${s.lastGood.revision}"}`), 1);
      assert.equal(m(`tailplane_sync_revision_info{revision="${v3.sha}"}`), undefined);
      assert.deepEqual(server.tailnet.audit.list({ object: `git:${v3.sha}` }).entries, []);
      assert.ok(server.tailnet.audit.list({}).entries.every((e) => !e.source.includes(v3.sha)));
    });

    await t.test('fixing the commit applies it', async () => {
      const v4 = repo.commit(desired({ tests: passing, dns: '"8.8.8.8"' }), 'v4: fixed');
      await waitFor('v4 applied', roundAt(v4.sha, 'applied'));
      assert.deepEqual(server.tailnet.dns().nameservers, ['8.8.8.8']);
      const m = await metrics();
      assert.deepEqual([m(`tailplane_sync_revision_info{revision="${v4.sha}"}`), m('tailplane_sync_consecutive_failures')], [1, 0]);
      assert.equal(auditOf(v4.sha).at(-1)!.action, 'revision.apply');
    });

    await t.test('a hand retag through the CLI is reverted in enforce mode', async () => {
      const tag = await cliAsync(server, 'nodes', 'tag', 'db1', '--tags', 'tag:temp');
      assert.equal(tag.status, 0, tag.stderr);
      await waitFor('retag reverted', () => db1().tags.join() === 'tag:db');
      const drift = await waitFor('drift event', () =>
        hooks.events.find((e) => e.event === 'drift' && e.body.round.drift.some((d: any) => d.address === 'node.db1' && d.diffs[0].before[0] === 'tag:temp')),
      );
      assert.equal(drift.body.round.result, 'applied');
      assert.match(drift.body.markdown, /\| `node\.db1` \| changed \| `tags` \| `\["tag:temp"\]` \| `\["tag:db"\]` \|/);
    });

    await t.test('the webhook got signed drift, failure and recovery events', async () => {
      const failure = await waitFor('failure event', () => hooks.events.find((e) => e.event === 'failure'));
      assert.equal(failure.body.round.revision, v3.sha);
      assert.match(failure.body.markdown, /desired\.hujson:11:28/);
      const recovery = await waitFor('recovery event', () => hooks.events.find((e) => e.event === 'recovery'));
      assert.equal(recovery.body.round.result, 'applied');
      assert.ok(hooks.events.some((e) => e.event === 'drift'));
      assert.ok(hooks.events.every((e) => e.signed), 'every delivery carries a valid signature');
      assert.equal(hooks.events.filter((e) => e.event === 'failure').length, 1, 'a failure repeated every round is announced once');
    });

    await stop(enforce);
    await t.test('report mode reports a hand change and leaves it; of two processes one leads', async () => {
      const [a, b] = [sync('--mode', 'report'), sync('--mode', 'report')];
      const tag = await cliAsync(server, 'nodes', 'tag', 'db1', '--tags', 'tag:temp');
      assert.equal(tag.status, 0, tag.stderr);
      const s = await waitFor('drift reported', async () => {
        const st = await status();
        return st.status?.mode === 'report' && st.status.lastRound?.result === 'drift' ? st : undefined;
      });
      assert.deepEqual(s.status.lastRound.drift.map((d: any) => d.address), ['node.db1']);
      // The second process may still be starting: wait for its first try at the lease.
      await waitFor('the other process standing by', () => [a, b].some((p) => /standing by: lease "sync" is held by/.test(p.log())));
      assert.ok([a, b].some((p) => p.log().includes(`leading as ${s.leader.holder}`)));
      assert.equal([a, b].filter((p) => /leading as/.test(p.log())).length, 1, 'exactly one process leads');
      await new Promise((r) => setTimeout(r, 2 * intervalMs));
      assert.deepEqual(db1().tags, ['tag:temp'], 'report mode changes nothing');
      await waitFor('report drift event', () => hooks.events.find((e) => e.event === 'drift' && e.body.mode === 'report'));
      await Promise.all([stop(a), stop(b)]);
    });

    await t.test('SIGKILL of sync in the middle of a round leaves nothing half-applied', async () => {
      const many = ['cy', 'dee', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo'];
      const v5 = repo.commit(desired({ tests: passing, dns: '"4.4.4.4"', users: many }), 'v5: more people');
      const whole = (v: 'old' | 'new') => {
        assert.deepEqual(liveUsers(), v === 'old' ? ['ada', 'bo'] : ['ada', 'bo', ...many].sort());
        assert.deepEqual(server.tailnet.dns().nameservers, v === 'old' ? ['8.8.8.8'] : ['4.4.4.4']);
        assert.deepEqual(db1().tags, v === 'old' ? ['tag:temp'] : ['tag:db']);
      };
      // The real server, instrumented to SIGKILL the sync process at a chosen moment of its round.
      const { leases } = server.tailnet;
      const acquire = leases.acquire;
      const batch = server.tailnet.batch;
      const killAt = (moment: 'lease' | 'batch', victim: { child: ChildProcess }) =>
        new Promise<void>((resolve) => {
          const kill = () => {
            victim.child.kill('SIGKILL');
            victim.child.once('exit', () => resolve());
          };
          if (moment === 'lease') {
            leases.acquire = (name, holder, ttl) => {
              const l = acquire(name, holder, ttl);
              if (name === 'apply' && holder.includes(`:${victim.child.pid}:`)) (kill(), (leases.acquire = acquire));
              return l;
            };
          } else {
            server.tailnet.batch = (fn) => (kill(), (server.tailnet.batch = batch), batch(fn));
          }
        });
      // Killed once it holds the write lease, before its batch: nothing of v5 is live.
      const first = sync('--mode', 'enforce');
      await killAt('lease', first);
      whole('old');
      // The next process takes over when the dead one's leases run out; killed while the server takes its batch,
      // the batch still lands whole.
      const second = sync('--mode', 'enforce');
      await killAt('batch', second);
      whole('new');
      const third = sync('--mode', 'enforce');
      await waitFor('v5 in sync under the next leader', async () => {
        const st = await status();
        return st.status?.lastRound?.revision === v5.sha && st.status.lastRound.result === 'in-sync' ? st : undefined;
      }, 30_000);
      await stop(third);
    });

    await t.test('credentials in the URL or the environment never reach the log or the status', async () => {
      const closed = http.createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((r) => closed.close(r));
      const once = spawn(process.execPath, [join(repoRoot, 'bin', 'tailplane.js'), 'sync', '--once', '--git', `https://alice:pw-SECRET-1@127.0.0.1:${port}/tailnet.git`,
        '--path', 'desired.hujson', '--cache-dir', join(dir, 'cache-creds')], {
        env: { ...process.env, TAILPLANE_URL: server.url, TAILPLANE_API_KEY: server.apiKey, TAILPLANE_SYNC_GIT_TOKEN: 'tok-SECRET-2' },
      });
      let out = '';
      once.stdout.on('data', (d) => (out += d));
      once.stderr.on('data', (d) => (out += d));
      const code = await new Promise((r) => once.once('exit', r));
      assert.equal(code, 1, out);
      assert.match(out, /git fetch failed: .*127\.0\.0\.1/);
      const st = JSON.stringify(await status());
      assert.match(st, /https:\/\/\*\*\*@127\.0\.0\.1/);
      assert.doesNotMatch(out + st, /SECRET/);
    });
  } finally {
    for (const p of procs) await stop(p, 'SIGKILL');
    await hooks.close();
    await server.close();
  }
});

test('serve runs sync from its config: a watched file is applied when it changes, GET /api/v1/sync, /metrics and the audit log show the round', async () => {
  const dir = tempDir('tailplane-serve-sync-');
  const file = join(dir, 'desired.hujson');
  const people = (names: string[]) => `{ users: [${names.map((n) => `{ name: "${n}" }`).join(', ')}], dns: { nameservers: ["9.9.9.9"] } }\n`;
  writeFileSync(file, people(['ada', 'bo']));
  const config = join(dir, 'config.yaml');
  writeFileSync(config, `derp:\n  enabled: false\nsync:\n  file: ${file}\n  interval: 1h\n  mode: enforce\n`);
  const metricsAddr = `127.0.0.1:${await freePort()}`;
  const server = await spawnServer({ args: ['-c', config], env: { TAILPLANE_METRICS_LISTEN_ADDR: metricsAddr } });
  try {
    const sync = async () => (await api(server, 'GET', '/api/v1/sync')).json;
    const first = await waitFor('the first round', async () => ((await sync()).status?.lastGood ? await sync() : undefined));
    assert.equal(first.status.lastRound.result, 'applied');
    assert.equal(first.leader.holder, first.status.holder);
    assert.match(first.status.nextRoundAt, /^\d{4}-/);
    // The interval is an hour: only the file watch can bring this change in.
    writeFileSync(file, people(['ada', 'bo', 'cy']));
    await waitFor('the edit applied', async () => {
      const users = (await api(server, 'GET', '/api/v1/user')).json.users.map((u: { name: string }) => u.name);
      return users.includes('cy');
    });
    await waitFor('the round logged', () => /sync: applied 1 change\(s\) at sha256:/.test(server.log()));
    // Sync inside serve reports through the server's own /metrics: one scrape target.
    const live = await waitFor('the round reported', async () => {
      const rev = (await sync()).status.lastGood.revision as string;
      return rev !== first.status.lastGood.revision ? rev : undefined;
    });
    const text = await lintedScrape(`http://${metricsAddr}/metrics`);
    assert.equal(seriesValue(text, `tailplane_sync_revision_info{revision="${live}"}`), 1);
    assert.equal(seriesValue(text, 'tailplane_sync_rounds_total{result="applied"}'), 2);
    assert.ok(seriesValue(text, 'tailplane_nodes')! >= 0, 'beside the server\'s metrics');
    // A file's rounds name its content hash.
    const round = (await api(server, 'GET', `/api/v1/audit?object=file:${live}`)).json.entries;
    assert.deepEqual(round.map((e: any) => [e.door, e.action, e.summary]), [['sync', 'revision.apply', 'applied 1 operation: user.create']]);

    // Slow saves (each written in two parts) in quick succession, some while a round reads the file: no round
    // reads a half-written file, every applied round names content that was saved whole, the last save ends up live.
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const saves = ['dee', 'eve', 'fay', 'gus', 'hal', 'ida'].map((_, i, all) => people(['ada', 'bo', 'cy', ...all.slice(0, i + 1)]));
    for (const text of saves) {
      const fd = openSync(file, 'w');
      writeSync(fd, text.slice(0, text.length >> 1));
      await sleep(50);
      writeSync(fd, text.slice(text.length >> 1));
      closeSync(fd);
      await sleep(80 + Math.random() * 250);
    }
    const final = `sha256:${createHash('sha256').update(saves.at(-1)!).digest('hex')}`;
    await waitFor('the last save live', async () => (await sync()).status.lastGood.revision === final);
    const users = (await api(server, 'GET', '/api/v1/user')).json.users.map((u: { name: string }) => u.name).sort();
    assert.deepEqual(users, ['ada', 'bo', 'cy', 'dee', 'eve', 'fay', 'gus', 'hal', 'ida']);
    const written = new Set([people(['ada', 'bo']), people(['ada', 'bo', 'cy']), ...saves].map((t) => `file:sha256:${createHash('sha256').update(t).digest('hex')}`));
    const applied = (await api(server, 'GET', '/api/v1/audit?limit=1000')).json.entries.filter((e: any) => e.action === 'revision.apply');
    assert.ok(applied.length >= 3, `rounds applied: ${applied.length}`);
    for (const e of applied) assert.ok(written.has(e.object), `${e.object} names content that was never saved whole`);
    assert.equal(seriesValue(await scrape(`http://${metricsAddr}/metrics`), 'tailplane_sync_rounds_total{result="failed"}') ?? 0, 0);
  } finally {
    await server.stop();
  }
});

test('POST /api/v1/batch writes all or nothing, and refuses a stale policy ETag or a lease it does not hold', async () => {
  const server = await inProcessServer({ derp: { ...defaultConfig().derp, enabled: false } });
  try {
    const dns = server.tailnet.dns();
    const refusedPolicy =
      '{\n  "hosts": { "srv": "100.64.0.10" },\n  "acls": [{ "action": "accept", "src": ["ada@"], "dst": ["srv:22"] }],\n  "tests": [{ "src": "zed@", "accept": ["srv:22"] }],\n}\n';
    const ops = [
      { op: 'user.create', name: 'ada' },
      { op: 'user.create', name: 'zed' },
      { op: 'dns.set', dns: { ...dns, nameservers: ['4.4.4.4'] } },
      { op: 'preauthkey.create', user: 'zed', tags: [], reusable: false, ephemeral: false, expiration: null },
      { op: 'policy.set', policy: refusedPolicy },
    ];
    const commit = 'c0ffee'.repeat(6) + 'c0ff';
    const malformed = await api(server, 'POST', '/api/v1/batch', { operations: ops, revision: 'main' });
    assert.equal(malformed.status, 400);
    assert.match(malformed.json.message, /revision must match pattern/);
    const refused = await api(server, 'POST', '/api/v1/batch', { operations: ops, revision: commit });
    assert.equal(refused.status, 400, JSON.stringify(refused.json));
    // The test runs against the users the same batch creates, and fails: zed may not reach port 22.
    assert.match(refused.json.message, /policy\.hujson:4:41: test failed: zed@ should accept srv:22/);
    assert.deepEqual([server.tailnet.users.list(), server.tailnet.preAuthKeys.list(), server.tailnet.dns()], [[], [], dns]);
    const db = new Database(join(server.dataDir, 'tailplane.sqlite'), { readonly: true });
    assert.deepEqual(db.prepare('SELECT COUNT(*) AS n FROM users').get(), { n: 0 }, 'nothing reached the database');
    assert.deepEqual(db.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE source LIKE '%git:%'").get(), { n: 0 }, 'not even an entry saying it was applied');
    db.close();

    const passing = refusedPolicy.replace('"src": ["ada@"]', '"src": ["ada@", "zed@"]');
    const stale = await api(server, 'POST', '/api/v1/batch', { operations: [{ op: 'policy.set', policy: passing }], ifMatch: '"stale"' });
    assert.equal(stale.status, 412);
    const fenced = await api(server, 'POST', '/api/v1/batch', { operations: [], lease: { name: 'apply', holder: 'someone' } });
    assert.deepEqual([fenced.status, fenced.json.message], [409, 'lease "apply" is not held by someone']);

    const done = await api(server, 'POST', '/api/v1/batch', { operations: ops.slice(0, 4).concat({ op: 'policy.set', policy: passing }), revision: commit });
    assert.equal(done.status, 200, JSON.stringify(done.json));
    // Each change names the commit it carries out; one last entry records the batch as a whole.
    const entries = server.tailnet.audit.list({}).entries.filter((e) => e.door !== 'system');
    assert.deepEqual(entries.map((e) => e.action), ['user.create', 'user.create', 'dns.set', 'authkey.create', 'policy.set', 'revision.apply']);
    assert.ok(entries.every((e) => e.source === `127.0.0.1 git:${commit}`), JSON.stringify(entries.map((e) => e.source)));
    assert.deepEqual([entries[5]!.object, entries[5]!.summary], [`git:${commit}`, 'applied 5 operations: user.create ×2, dns.set, preauthkey.create, policy.set']);
    assert.equal(server.tailnet.audit.verify().ok, true);
    assert.match(done.json.results[3].key, /^tpkey-auth-/);
    assert.deepEqual(server.tailnet.users.list().map((u) => u.name), ['ada', 'zed']);
    assert.deepEqual(server.tailnet.dns().nameservers, ['4.4.4.4']);
  } finally {
    await server.close();
  }
});
