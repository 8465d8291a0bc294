// Shared by the policy-live tests: a few nodes registered without real clients, and policies over them.
import type { Tailnet } from '../../src/state/tailnet.ts';

const hex = (n: number, c: string) => c.repeat(64 - String(n).length) + String(n);

/** Registers users alice and bob, and nodes alice-laptop, bob-laptop and web (tag:server). */
export function seedTailnet(t: Tailnet): void {
  const alice = t.users.create({ name: 'alice', email: 'alice@example.com' });
  const bob = t.users.create({ name: 'bob' });
  const nodes: [string, number | null, string[]][] = [
    ['alice-laptop', alice.id, []],
    ['bob-laptop', bob.id, []],
    ['web', null, ['tag:server']],
  ];
  nodes.forEach(([hostname, userId, tags], i) =>
    t.nodes.register({
      machineKey: `mkey:${hex(i + 1, 'a')}`,
      nodeKey: `nodekey:${hex(i + 1, 'b')}`,
      hostname,
      hostinfo: {},
      userId,
      tags,
      ephemeral: false,
      method: 'authkey',
    }),
  );
}

const head = `{
  "groups": {"group:admins": ["alice@"]},
  "tagOwners": {"tag:server": ["group:admins"]},`;

/** Admins reach the servers on 22 and 443, bob on 443; admins may SSH in (check mode) as root. */
export const before = `${head}
  "acls": [
    {"action": "accept", "src": ["group:admins"], "dst": ["tag:server:22,443"]},
    {"action": "accept", "src": ["bob@"], "dst": ["tag:server:443"]},
  ],
  "ssh": [{"action": "check", "src": ["group:admins"], "dst": ["tag:server"], "users": ["root"]}],
  "tests": [{"src": "alice@", "accept": ["tag:server:22"], "deny": ["tag:server:80"]}],
}`;

/** Admins also get 5432; bob trades 443 for 80. */
export const after = `${head}
  "acls": [
    {"action": "accept", "src": ["group:admins"], "dst": ["tag:server:22,443,5432"]},
    {"action": "accept", "src": ["bob@"], "dst": ["tag:server:80"]},
  ],
}`;

/** `before`, plus a test that fails: bob has no SSH port. */
export const failing = before.replace('"tests": [', '"tests": [{"src": "bob@", "accept": ["tag:server:22"]}, ');

/** The 1-based `line:col` where `needle` starts in `text` (its `nth` occurrence). */
export function posOf(text: string, needle: string, nth = 1): string {
  let at = -1;
  for (let i = 0; i < nth; i++) at = text.indexOf(needle, at + 1);
  if (at < 0) throw new Error(`${needle} not in text`);
  const lines = text.slice(0, at).split('\n');
  return `${lines.length}:${lines[lines.length - 1]!.length + 1}`;
}
