/** Semantic checks of a parsed policy: references resolve, aliases appear only where Tailscale allows them, SSH ownership rules. */
import { errorSink, type PolicyError } from './errors.ts';
import type { AccessRule, Alias, Policy, SshRule } from './types.ts';

/** Where an alias appears; each place admits a different set of alias classes. */
type Place = 'src' | 'dst' | 'via' | 'groupMember' | 'tagOwner' | 'ipset' | 'sshSrc' | 'sshDst' | 'approver' | 'target' | 'testSrc' | 'testDst' | 'sshTestSrc' | 'sshTestDst';

const BASIC = ['user', 'domain', 'group', 'tag', 'host', 'prefix', 'ipset'];
const ALLOWED: Record<Place, readonly string[]> = {
  src: ['wildcard', ...BASIC, 'autogroup:member', 'autogroup:tagged', 'autogroup:danger-all'],
  dst: ['wildcard', ...BASIC, 'autogroup:member', 'autogroup:tagged', 'autogroup:self', 'autogroup:internet'],
  via: ['tag'],
  groupMember: ['user'],
  tagOwner: ['user', 'domain', 'group', 'tag', 'autogroup:admin', 'autogroup:owner', 'autogroup:member'],
  ipset: ['prefix', 'host'],
  sshSrc: ['user', 'domain', 'group', 'tag', 'autogroup:member', 'autogroup:tagged'],
  sshDst: ['user', 'tag', 'autogroup:member', 'autogroup:tagged', 'autogroup:self'],
  approver: ['user', 'domain', 'group', 'tag', 'autogroup:member', 'autogroup:tagged'],
  target: ['wildcard', ...BASIC, 'autogroup:member', 'autogroup:tagged', 'autogroup:admin', 'autogroup:owner'],
  testSrc: ['user', 'group', 'tag', 'host', 'prefix'],
  testDst: ['user', 'group', 'tag', 'host', 'prefix', 'autogroup:internet'],
  sshTestSrc: ['user', 'group', 'tag', 'host', 'prefix'],
  sshTestDst: ['user', 'tag', 'host', 'prefix'],
};

const PLACE_NAME: Record<Place, string> = {
  src: 'src', dst: 'dst', via: 'via', groupMember: 'a group', tagOwner: 'tagOwners', ipset: 'an ipset',
  sshSrc: 'SSH src', sshDst: 'SSH dst', approver: 'autoApprovers', target: 'nodeAttrs target',
  testSrc: 'test src', testDst: 'test destinations', sshTestSrc: 'sshTests src', sshTestDst: 'sshTests dst',
};

/** Why an alias class is refused in a place, when a specific rule explains it better than "not allowed". */
function refusal(cls: string, place: Place): string | undefined {
  if (cls === 'autogroup:self') return 'autogroup:self can only be used in dst (of acls, grants or ssh)';
  if (cls === 'autogroup:internet') return 'autogroup:internet can only be used in dst (it is reached through exit nodes)';
  if (cls === 'autogroup:nonroot') return 'autogroup:nonroot can only be used in ssh users';
  if (cls === 'autogroup:danger-all') return 'autogroup:danger-all can only be used in src';
  if (cls === 'autogroup:admin' || cls === 'autogroup:owner') return `${cls} can only be used in tagOwners and nodeAttrs targets`;
  if (place === 'groupMember' && cls === 'group') return 'groups may not contain groups';
  if (place === 'sshDst' && cls === 'wildcard') return '"*" is not allowed as an SSH destination; name tags, users or autogroup:self';
  if (place === 'sshDst' && (cls === 'host' || cls === 'prefix')) return 'hosts and IP addresses are not allowed as SSH destinations';
  if (place === 'sshDst' && cls === 'group') return 'groups are not allowed as SSH destinations; use autogroup:self or tags';
  if (place === 'via') return 'via only takes tags (the subnet routers or exit nodes to route through)';
  return undefined;
}

export const aliasClass = (a: Alias): string => (a.kind === 'autogroup' ? `autogroup:${a.name}` : a.kind);

/** Returns every semantic error in the policy (empty when it is valid). */
export function validatePolicy(p: Policy): PolicyError[] {
  const sink = errorSink(p.file);
  const check = (aliases: readonly Alias[], place: Place) => {
    for (const a of aliases) {
      const cls = aliasClass(a);
      if (!ALLOWED[place].includes(cls)) {
        sink.add(a.pos, refusal(cls, place) ?? `${JSON.stringify(a.text)} is not allowed in ${PLACE_NAME[place]}`);
        continue;
      }
      const missing = undefinedRef(p, a);
      if (missing) sink.add(a.pos, missing);
    }
  };
  for (const g of p.groups.values()) check(g.members, 'groupMember');
  for (const t of p.tagOwners.values()) check(t.members, 'tagOwner');
  for (const s of p.ipsets.values()) check(s.members, 'ipset');
  for (const r of p.rules) {
    check(r.src, 'src');
    check(r.dst.map((d) => d.alias), 'dst');
    check(r.via, 'via');
    if (r.dst.some((d) => aliasClass(d.alias) === 'autogroup:self')) {
      // Tailscale lets an ACL's "*" reach autogroup:self (narrowed per node) but refuses it in a grant.
      const ok = r.source === 'acls' ? ['wildcard', 'user', 'group', 'autogroup:member'] : ['user', 'group', 'autogroup:member'];
      for (const s of r.src) {
        if (!ok.includes(aliasClass(s))) {
          sink.add(s.pos, `${JSON.stringify(s.text)} cannot reach autogroup:self; its sources must be users, groups${r.source === 'acls' ? ', autogroup:member or "*"' : ' or autogroup:member'}`);
        }
      }
    }
    if (r.source === 'grants') checkGrant(r, sink.add);
    if (r.via.length > 0 && r.dst.some((d) => !['prefix', 'host', 'ipset', 'autogroup:internet'].includes(aliasClass(d.alias)))) {
      sink.add(r.pos, 'a grant with via may only have IP prefixes, hosts, ipsets or autogroup:internet as dst');
    }
  }
  for (const r of p.ssh) checkSsh(r, check, sink.add);
  for (const a of p.autoApprovers.routes) check(a.approvers, 'approver');
  check(p.autoApprovers.exitNode, 'approver');
  for (const n of p.nodeAttrs) {
    check(n.target, 'target');
    for (const a of n.attr) if (a.text.trim() === '') sink.add(a.pos, 'empty attr');
  }
  for (const t of p.tests) {
    check([t.src], 'testSrc');
    check([...t.accept, ...t.deny].map((d) => d.alias), 'testDst');
    for (const d of [...t.accept, ...t.deny]) if (!singleAddress(d.alias)) sink.add(d.pos, `test destination ${JSON.stringify(d.text)} is a CIDR; Tailscale's tests take one address (or a user, group, tag or host)`);
  }
  for (const t of p.sshTests) {
    check([t.src], 'sshTestSrc');
    check(t.dst, 'sshTestDst');
    for (const d of t.dst) if (!singleAddress(d)) sink.add(d.pos, `sshTests dst ${JSON.stringify(d.text)} is a CIDR; name one address, a host, a user or a tag`);
    for (const u of [...t.accept, ...t.check, ...t.deny]) checkSshUser(u.text, u.pos, sink.add, true);
  }
  return sink.list;
}

/**
 * False for a CIDR written in a test (an address with its /32 or /128 too): Tailscale evaluates those
 * differently and fails the test. A host naming a network is still taken (as its first address).
 */
function singleAddress(a: Alias): boolean {
  return a.kind !== 'prefix' || !a.text.includes('/');
}

/** What Tailscale refuses in a grant beyond alias placement. */
function checkGrant(r: AccessRule, add: Add): void {
  for (const d of r.dst) {
    if (d.alias.kind === 'prefix' && d.alias.prefix.bits === 0) {
      add(d.pos, `dst ${JSON.stringify(d.alias.text)}: to allow all IP addresses, use "*" or "autogroup:internet"`);
    }
    if (r.app && aliasClass(d.alias) === 'autogroup:internet') add(d.pos, 'app capabilities cannot be granted to autogroup:internet');
  }
}

function undefinedRef(p: Policy, a: Alias): string | undefined {
  if (a.kind === 'group' && !p.groups.has(a.name)) return `group ${JSON.stringify(a.name)} is not defined in groups`;
  if (a.kind === 'tag' && !p.tagOwners.has(a.name)) return `tag ${JSON.stringify(a.name)} is not defined in tagOwners`;
  if (a.kind === 'host' && !p.hosts.has(a.name)) return `host ${JSON.stringify(a.name)} is not defined in hosts (users are written "name@")`;
  if (a.kind === 'ipset' && !p.ipsets.has(a.name)) return `ipset ${JSON.stringify(a.name)} is not defined in ipsets`;
  return undefined;
}

type Add = (pos: Alias['pos'], detail: string) => void;

function checkSsh(r: SshRule, check: (a: readonly Alias[], place: Place) => void, add: Add): void {
  check(r.src, 'sshSrc');
  check(r.dst, 'sshDst');
  const userOwned = r.dst.filter((d) => ['user', 'autogroup:member', 'autogroup:self'].includes(aliasClass(d)));
  if (userOwned.length > 0) {
    for (const s of r.src) {
      if (s.kind === 'tag' || aliasClass(s) === 'autogroup:tagged') {
        add(s.pos, `tags cannot SSH into user-owned devices (${userOwned[0]!.text}); use a tagged destination`);
      }
    }
  }
  for (const d of r.dst) {
    if (d.kind !== 'user') continue;
    if (r.src.length !== 1 || r.src[0]!.kind !== 'user' || r.src[0]!.text !== d.text) {
      add(d.pos, `SSH into ${d.text}'s devices is only allowed from ${d.text} itself (src must be exactly ["${d.text}"]); use autogroup:self`);
    }
  }
  if (r.users.length === 0) add(r.pos, 'SSH rule has no users');
  for (const u of r.users) checkSshUser(u.text, u.pos, add, false);
}

function checkSshUser(text: string, pos: Alias['pos'], add: Add, inTest: boolean): void {
  if (text === 'root' || text === 'autogroup:nonroot') {
    if (inTest && text === 'autogroup:nonroot') add(pos, 'sshTests name concrete users, not autogroup:nonroot');
    return;
  }
  if (text.startsWith('localpart:')) {
    if (!/^localpart:\*@[A-Za-z0-9.-]+$/.test(text)) add(pos, `invalid ${JSON.stringify(text)} (expected "localpart:*@example.com")`);
    return;
  }
  if (text.startsWith('autogroup:')) return add(pos, `${JSON.stringify(text)} is not a valid SSH user (only autogroup:nonroot is)`);
  // Tailscale takes any other login as written (spaces, non-ASCII letters); the SSH server decides what exists.
  if (text === '' || text === '*') add(pos, `SSH user ${JSON.stringify(text)} is not valid (name a login, "root", "autogroup:nonroot" or "localpart:*@domain")`);
}

/**
 * `user:*@domain` and `localpart:*@domain` must name one of the tailnet's domains (Tailscale: "example.org is not
 * associated with this Tailnet"). tailplane has no organisation domain: a domain is the tailnet's when one of its
 * users has an e-mail address there. A tailnet whose users have no e-mail addresses yet is not checked.
 */
export function checkDomains(p: Policy, userEmails: readonly string[]): PolicyError[] {
  const known = new Set(userEmails.flatMap((e) => (e.includes('@') ? [e.slice(e.lastIndexOf('@') + 1).toLowerCase()] : [])));
  if (known.size === 0) return [];
  const sink = errorSink(p.file);
  const check = (domain: string, pos: Alias['pos']) => {
    if (!known.has(domain.toLowerCase())) sink.add(pos, `${domain} is not a domain of this tailnet's users (${[...known].sort().join(', ')}); user:*@ and localpart:*@ need one`);
  };
  const aliases = [...p.groups.values(), ...p.tagOwners.values()].flatMap((l) => l.members);
  for (const r of p.rules) aliases.push(...r.src, ...r.dst.map((d) => d.alias));
  for (const r of p.ssh) {
    aliases.push(...r.src);
    for (const u of r.users) if (u.text.startsWith('localpart:*@')) check(u.text.slice(12), u.pos);
  }
  for (const a of p.autoApprovers.routes) aliases.push(...a.approvers);
  aliases.push(...p.autoApprovers.exitNode, ...p.nodeAttrs.flatMap((n) => n.target));
  for (const a of aliases) if (a.kind === 'domain') check(a.name, a.pos);
  return sink.list;
}
