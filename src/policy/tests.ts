/** Runs a policy's `tests` and `sshTests` against its compiled form; each failure quotes the test and its position. */
import { PolicyError, type Pos } from './errors.ts';
import type { CompiledPolicy } from './compile.ts';
import { principalOf, type Principal, type Resolver } from './resolve.ts';
import type { AccessTest, Alias, SshTest } from './types.ts';

/** Returns one PolicyError per failing expectation (empty when every test passes). */
export function runPolicyTests(compiled: CompiledPolicy): PolicyError[] {
  const fail = (pos: Pos, detail: string) => new PolicyError(compiled.policy.file, pos, detail);
  return [
    ...compiled.policy.tests.flatMap((t) => accessTest(compiled, t, fail)),
    ...compiled.policy.sshTests.flatMap((t) => sshTest(compiled, t, fail)),
  ];
}

type Fail = (pos: Pos, detail: string) => PolicyError;

/**
 * The identities an alias stands for in a test: the matching nodes when the topology has some, otherwise a
 * synthetic identity (a user, a tag, an address), so tests also run against a policy with no devices yet.
 */
export function principalsFor(a: Alias, r: Resolver): Principal[] {
  const set = r.nodes(a);
  if (set.ids.size > 0) return [...set.ids].map((id) => principalOf(r.topo.byId.get(id)!));
  const none = { user: undefined, tags: [] as string[], ips: [] };
  switch (a.kind) {
    case 'user':
      return [{ ...none, user: r.userName(a) }];
    case 'group':
      return [...r.groupUsers(a.name)].map((user) => ({ ...none, user }));
    case 'tag':
      return [{ ...none, tags: [a.name] }];
    case 'host':
    case 'prefix':
    case 'ipset':
      return r.prefixes(a).slice(0, 1).map((p) => ({ ...none, ips: [{ v6: p.v6, n: p.lo }] }));
    case 'autogroup':
      return a.name === 'internet' ? [{ ...none, ips: [{ v6: false, n: 0x01010101n }] }] : [];
    default:
      return [];
  }
}

function accessTest(c: CompiledPolicy, t: AccessTest, fail: Fail): PolicyError[] {
  const srcs = principalsFor(t.src, c.resolver);
  if (srcs.length === 0) return [fail(t.src.pos, `test failed: ${t.src.text} matches no user, tag or node`)];
  const proto = t.protos?.[0] ?? 6;
  const via = t.protoText ? ` over ${t.protoText}` : '';
  const out: PolicyError[] = [];
  for (const [want, list] of [[true, t.accept], [false, t.deny]] as const) {
    for (const d of list) {
      const dsts = principalsFor(d.alias, c.resolver);
      if (dsts.length === 0) {
        out.push(fail(d.pos, `test failed: ${d.alias.text} matches no user, tag or node`));
        continue;
      }
      const results = srcs.flatMap((s) => dsts.map((x) => c.canAccess(s, x, proto, d.port.first)));
      const ok = want ? results.every(Boolean) : !results.some(Boolean);
      if (!ok) {
        const [verb, got] = want ? ['accept', 'denied'] : ['deny', 'accepted'];
        out.push(fail(d.pos, `test failed: ${t.src.text} should ${verb} ${d.text}${via} but it is ${got}`));
      }
    }
  }
  return out;
}

function sshTest(c: CompiledPolicy, t: SshTest, fail: Fail): PolicyError[] {
  const srcs = principalsFor(t.src, c.resolver);
  if (srcs.length === 0) return [fail(t.src.pos, `sshTests failed: ${t.src.text} matches no user, tag or node`)];
  const out: PolicyError[] = [];
  for (const dstAlias of t.dst) {
    const dsts = principalsFor(dstAlias, c.resolver);
    if (dsts.length === 0) {
      out.push(fail(dstAlias.pos, `sshTests failed: ${dstAlias.text} matches no user, tag or node`));
      continue;
    }
    for (const [want, users] of [['accept', t.accept], ['check', t.check], ['deny', t.deny]] as const) {
      for (const u of users) {
        const got = srcs.flatMap((s) => dsts.map((d) => c.sshDecision(s, d, u.text))).find((g) => g !== want);
        if (got !== undefined) {
          out.push(fail(u.pos, `sshTests failed: ${t.src.text} ssh to ${dstAlias.text} as ${JSON.stringify(u.text)} should be ${want} but is ${got}`));
        }
      }
    }
  }
  return out;
}
