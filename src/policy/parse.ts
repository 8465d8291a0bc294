/** Turns HuJSON policy text into the positioned policy AST, rejecting unknown keys and malformed values. */
import { combine, errorSink, type ErrorSink, type Pos } from './errors.ts';
import { parseHujson, type JsonArray, type JsonNode, type JsonObject } from './hujson.ts';
import { parseAlias, parseIpEntry, parsePorts, parseProto, portsFitProto, splitHostPort } from './alias.ts';
import { parsePrefix, type Prefix } from '../net/ip.ts';
import type {
  AccessRule, AccessTest, Alias, AutoApprovers, Destination, Host, IpSpec, NamedList, NodeAttr, Policy,
  SshRule, SshTest, SshUser, TestDst,
} from './types.ts';

/** Sections Tailscale has but this server does not implement: named, so the error can say so. */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  derpMap: 'derpMap is not supported in the policy; configure DERP regions in the server configuration',
  postures: 'device posture ("postures") is not supported',
  defaultSrcPosture: 'device posture ("defaultSrcPosture") is not supported',
  oneCGNATRoute: 'oneCGNATRoute is not supported',
  attrConfig: 'custom device attributes ("attrConfig") are not supported',
  srcPosture: 'device posture ("srcPosture") is not supported',
  recorder: 'SSH session recording ("recorder") is not supported',
  enforceRecorder: 'SSH session recording ("enforceRecorder") is not supported',
  users: 'the legacy "users" field is not supported; use "src"',
  ports: 'the legacy "ports" field is not supported; use "dst"',
};

/** Parses the syntax and shape only; returns the AST (possibly partial) and every error found. */
export function parseStructure(text: string, file: string): { policy: Policy; errors: ErrorSink['list'] } {
  const sink = errorSink(file);
  let root: JsonNode;
  try {
    root = parseHujson(text, file);
  } catch (e) {
    return { policy: emptyPolicy(file), errors: [e as never] };
  }
  return { policy: buildPolicy(root, sink), errors: sink.list };
}

/** Parses structure only and throws a PolicyError listing every problem. Use `parsePolicy` in index.ts for full checks. */
export function parseStructureOrThrow(text: string, file: string): Policy {
  const { policy, errors } = parseStructure(text, file);
  if (errors.length > 0) throw combine(errors);
  return policy;
}

export function emptyPolicy(file: string): Policy {
  return {
    file, groups: new Map(), hosts: new Map(), tagOwners: new Map(), ipsets: new Map(), rules: [], hasAccessRules: false,
    ssh: [], autoApprovers: { routes: [], exitNode: [] }, nodeAttrs: [], tests: [], sshTests: [],
    randomizeClientPort: false, disableIPv4: false,
  };
}

type Handlers = Record<string, (v: JsonNode, keyPos: Pos) => void>;

/** Dispatches an object's keys to handlers; unknown keys are errors, `#` keys are comments (headscale-admin style). */
function walk(sink: ErrorSink, obj: JsonObject, what: string, handlers: Handlers, ignoreHash = true): void {
  for (const { key, keyPos, value } of obj.entries) {
    const h = handlers[key];
    if (h) h(value, keyPos);
    else if (ignoreHash && key.startsWith('#')) continue;
    else if (UNSUPPORTED[key]) sink.add(keyPos, UNSUPPORTED[key]!);
    else sink.add(keyPos, `unknown key ${JSON.stringify(key)} in ${what} (expected one of: ${Object.keys(handlers).join(', ')})`);
  }
}

function need(sink: ErrorSink, obj: JsonObject, what: string, keys: string[]): void {
  for (const k of keys) if (!obj.entries.some((e) => e.key === k)) sink.add(obj.pos, `${what} is missing "${k}"`);
}

/** Whether key holds a non-empty array or object. */
const nonEmpty = (o: JsonObject, key: string) =>
  o.entries.some((e) => e.key === key && ((e.value.kind === 'array' && e.value.items.length > 0) || (e.value.kind === 'object' && e.value.entries.length > 0)));

const kindName = (n: JsonNode) => (n.kind === 'null' ? 'null' : n.kind);

function obj(sink: ErrorSink, n: JsonNode, what: string): JsonObject | undefined {
  if (n.kind === 'object') return n;
  sink.add(n.pos, `${what} must be an object, not ${kindName(n)}`);
  return undefined;
}

function arr(sink: ErrorSink, n: JsonNode, what: string): JsonArray | undefined {
  if (n.kind === 'array') return n;
  sink.add(n.pos, `${what} must be an array, not ${kindName(n)}`);
  return undefined;
}

function str(sink: ErrorSink, n: JsonNode, what: string): string | undefined {
  if (n.kind === 'string') return n.value as string;
  sink.add(n.pos, `${what} must be a string, not ${kindName(n)}`);
  return undefined;
}

function bool(sink: ErrorSink, n: JsonNode, what: string): boolean {
  if (n.kind === 'boolean') return n.value as boolean;
  sink.add(n.pos, `${what} must be true or false`);
  return false;
}

function strings(sink: ErrorSink, n: JsonNode, what: string): { text: string; pos: Pos }[] {
  const a = arr(sink, n, what);
  if (!a) return [];
  return a.items.flatMap((item) => {
    const s = str(sink, item, `each entry of ${what}`);
    return s === undefined ? [] : [{ text: s, pos: item.pos }];
  });
}

function alias(sink: ErrorSink, text: string, pos: Pos): Alias | undefined {
  const r = parseAlias(text, pos);
  if ('error' in r) sink.add(pos, r.error);
  return 'ok' in r ? r.ok : undefined;
}

/** Aliases with surrounding white space dropped, as Tailscale reads `"tag:server "`. */
function aliases(sink: ErrorSink, n: JsonNode, what: string): Alias[] {
  return strings(sink, n, what).flatMap(({ text, pos }) => alias(sink, text.trim(), pos) ?? []);
}

function prefix(sink: ErrorSink, text: string, pos: Pos, what: string): Prefix | undefined {
  const r = parsePrefix(text);
  if (!r) sink.add(pos, `${what} ${JSON.stringify(text)} is not an IP address or CIDR prefix`);
  else if ('error' in r) sink.add(pos, r.error);
  else return r.prefix;
  return undefined;
}

function buildPolicy(root: JsonNode, sink: ErrorSink): Policy {
  const p = { ...emptyPolicy(sink.file) } as { -readonly [K in keyof Policy]: Policy[K] };
  const top = obj(sink, root, 'the policy');
  if (!top) return p;
  const rules: AccessRule[] = [];
  const grants: AccessRule[] = [];
  walk(sink, top, 'the policy', {
    groups: (v) => (p.groups = namedLists(sink, v, 'groups', 'group:')),
    hosts: (v) => (p.hosts = hosts(sink, v)),
    tagOwners: (v) => (p.tagOwners = namedLists(sink, v, 'tagOwners', 'tag:')),
    ipsets: (v) => (p.ipsets = namedLists(sink, v, 'ipsets', 'ipset:')),
    acls: (v) => {
      p.hasAccessRules = true;
      for (const item of arr(sink, v, 'acls')?.items ?? []) rules.push(...optional(acl(sink, item)));
    },
    grants: (v) => {
      p.hasAccessRules = true;
      for (const item of arr(sink, v, 'grants')?.items ?? []) grants.push(...optional(grant(sink, item)));
    },
    ssh: (v) => (p.ssh = (arr(sink, v, 'ssh')?.items ?? []).flatMap((i) => optional(sshRule(sink, i)))),
    autoApprovers: (v) => (p.autoApprovers = autoApprovers(sink, v)),
    nodeAttrs: (v) => (p.nodeAttrs = (arr(sink, v, 'nodeAttrs')?.items ?? []).flatMap((i) => optional(nodeAttr(sink, i)))),
    tests: (v) => (p.tests = (arr(sink, v, 'tests')?.items ?? []).flatMap((i) => optional(accessTest(sink, i)))),
    sshTests: (v) => (p.sshTests = (arr(sink, v, 'sshTests')?.items ?? []).flatMap((i) => optional(sshTest(sink, i)))),
    randomizeClientPort: (v) => (p.randomizeClientPort = bool(sink, v, 'randomizeClientPort')),
    disableIPv4: (v) => (p.disableIPv4 = bool(sink, v, 'disableIPv4')),
  }, false);
  p.rules = [...rules, ...grants];
  return p;
}

const optional = <T>(x: T | undefined): T[] => (x === undefined ? [] : [x]);

function namedLists(sink: ErrorSink, v: JsonNode, what: string, keyPrefix: string): Map<string, NamedList> {
  const out = new Map<string, NamedList>();
  for (const { key, keyPos, value } of obj(sink, v, what)?.entries ?? []) {
    if (!key.startsWith(keyPrefix) || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(key.slice(keyPrefix.length))) {
      sink.add(keyPos, `${what} key ${JSON.stringify(key)} must look like "${keyPrefix}name"`);
      continue;
    }
    out.set(key, { pos: keyPos, members: aliases(sink, value, `${what} ${JSON.stringify(key)}`) });
  }
  return out;
}

function hosts(sink: ErrorSink, v: JsonNode): Map<string, Host> {
  const out = new Map<string, Host>();
  for (const { key, keyPos, value } of obj(sink, v, 'hosts')?.entries ?? []) {
    const a = parseAlias(key, keyPos);
    if (!('ok' in a) || a.ok.kind !== 'host') {
      sink.add(keyPos, `host name ${JSON.stringify(key)} is invalid (letters, digits, ".", "_" and "-" only; not an IP, user, group or tag)`);
      continue;
    }
    const text = str(sink, value, `host ${JSON.stringify(key)}`);
    const pr = text === undefined ? undefined : prefix(sink, text, value.pos, `host ${JSON.stringify(key)}`);
    if (pr) out.set(key, { pos: keyPos, prefix: pr });
  }
  return out;
}

function acl(sink: ErrorSink, n: JsonNode): AccessRule | undefined {
  const o = obj(sink, n, 'an ACL');
  if (!o) return undefined;
  let src: Alias[] = [];
  let protos: number[] | undefined;
  let protoText = '';
  let dstRaw: { text: string; pos: Pos }[] = [];
  walk(sink, o, 'an ACL', {
    action: (v) => {
      const a = str(sink, v, 'action');
      if (a !== undefined && a !== 'accept') sink.add(v.pos, `ACL action must be "accept", not ${JSON.stringify(a)}`);
    },
    src: (v) => (src = aliases(sink, v, 'src')),
    dst: (v) => (dstRaw = strings(sink, v, 'dst')),
    proto: (v) => {
      const t = str(sink, v, 'proto');
      const r = t === undefined ? undefined : parseProto(t);
      if (r && 'error' in r) sink.add(v.pos, r.error);
      else if (r) [protos, protoText] = [r.ok, t!];
    },
  });
  need(sink, o, 'ACL', ['action', 'src', 'dst']);
  const dst = dstRaw.flatMap(({ text, pos }): Destination[] => {
    const hp = splitHostPort(text);
    if ('error' in hp) return void sink.add(pos, hp.error), [];
    const a = alias(sink, hp.ok.alias, pos);
    const ports = parsePorts(hp.ok.ports);
    if ('error' in ports) return void sink.add(pos, ports.error), [];
    if (!portsFitProto(protos, ports.ok)) sink.add(pos, `protocol ${JSON.stringify(protoText)} has no ports; use "${hp.ok.alias}:*"`);
    return a ? [{ alias: a, pos, specs: [{ protos, ports: ports.ok }] }] : [];
  });
  return { source: 'acls', pos: o.pos, src, dst, app: undefined, via: [] };
}

function grant(sink: ErrorSink, n: JsonNode): AccessRule | undefined {
  const o = obj(sink, n, 'a grant');
  if (!o) return undefined;
  let src: Alias[] = [];
  let dstAliases: Alias[] = [];
  let specs: IpSpec[] = [];
  let app: Record<string, unknown[]> | undefined;
  let via: Alias[] = [];
  walk(sink, o, 'a grant', {
    src: (v) => (src = aliases(sink, v, 'src')),
    dst: (v) => (dstAliases = aliases(sink, v, 'dst')),
    ip: (v) => {
      specs = strings(sink, v, 'ip').flatMap(({ text, pos }) => {
        const r = parseIpEntry(text);
        return 'error' in r ? (sink.add(pos, r.error), []) : [r.ok];
      });
    },
    app: (v) => (app = capMap(sink, v)),
    via: (v) => (via = aliases(sink, v, 'via')),
  });
  need(sink, o, 'grant', ['src', 'dst']);
  // Tailscale: "ip and app can not both be empty" (absent, [] and {} are all empty).
  if (!nonEmpty(o, 'ip') && !nonEmpty(o, 'app')) sink.add(o.pos, 'grant needs a non-empty "ip" or "app"');
  const dst = dstAliases.map((a) => ({ alias: a, pos: a.pos, specs }));
  return { source: 'grants', pos: o.pos, src, dst, app, via };
}

/**
 * The tailscale.com capabilities a policy may grant; the rest of that domain is Tailscale's own ("capability name
 * must not be in the tailscale.com domain"). Companions (drive-sharer, relay-target) are derived, never granted.
 * List as in headscale hscontrol/policy/v2/types.go tailscaleCapAllowlist (names from tailscale/tailscale
 * tailcfg/peercap/peercap.go).
 */
const GRANTABLE_TAILSCALE_CAPS = ['drive', 'relay', 'webui', 'kubernetes', 'tsidp', 'secrets'].map((c) => `tailscale.com/cap/${c}`);

function capMap(sink: ErrorSink, v: JsonNode): Record<string, unknown[]> | undefined {
  const o = obj(sink, v, 'app');
  if (!o) return undefined;
  const out: Record<string, unknown[]> = {};
  for (const { key, keyPos, value } of o.entries) {
    if (!/^[a-z0-9.-]+\.[a-z]{2,}\/[\x21-\x7e]+$/i.test(key)) sink.add(keyPos, `app capability ${JSON.stringify(key)} must look like "example.com/cap/name"`);
    else if (key.toLowerCase().startsWith('tailscale.com/') && !GRANTABLE_TAILSCALE_CAPS.includes(key)) {
      sink.add(keyPos, `app capability ${JSON.stringify(key)} is reserved by Tailscale (grantable: ${GRANTABLE_TAILSCALE_CAPS.join(', ')})`);
    }
    const a = arr(sink, value, `app capability ${JSON.stringify(key)}`);
    if (a) out[key] = a.items.map(toPlain);
  }
  return out;
}

/** Converts a syntax-tree value back to plain JSON (capability values are passed to clients as-is). */
function toPlain(n: JsonNode): unknown {
  if (n.kind === 'object') return Object.fromEntries(n.entries.map((e) => [e.key, toPlain(e.value)]));
  if (n.kind === 'array') return n.items.map(toPlain);
  return n.value;
}

function sshRule(sink: ErrorSink, n: JsonNode): SshRule | undefined {
  const o = obj(sink, n, 'an SSH rule');
  if (!o) return undefined;
  const r = { pos: o.pos, action: 'accept', src: [], dst: [], users: [], checkPeriodMs: undefined, acceptEnv: [] } as {
    -readonly [K in keyof SshRule]: SshRule[K];
  };
  let periodPos: Pos | undefined;
  walk(sink, o, 'an SSH rule', {
    action: (v) => {
      const a = str(sink, v, 'action')?.trim();
      if (a === 'accept' || a === 'check') r.action = a;
      else if (a !== undefined) sink.add(v.pos, `SSH action must be "accept" or "check", not ${JSON.stringify(a)}`);
    },
    src: (v) => (r.src = aliases(sink, v, 'src')),
    dst: (v) => (r.dst = aliases(sink, v, 'dst')),
    users: (v) => (r.users = strings(sink, v, 'users').map((u) => ({ ...u, text: u.text.trim() }))),
    checkPeriod: (v) => {
      periodPos = v.pos;
      if (v.kind === 'null') return; // Tailscale reads null as "not set": the default period
      const t = str(sink, v, 'checkPeriod');
      if (t === undefined) return;
      const ms = t === 'always' ? 0 : parseDuration(t);
      if (ms === undefined) sink.add(v.pos, `checkPeriod ${JSON.stringify(t)} must be "always" or a duration like "12h" or "30m"`);
      // Tailscale accepts short periods ("30s") and refuses only those above 168h.
      else if (ms > 168 * 3_600_000) sink.add(v.pos, `checkPeriod ${JSON.stringify(t)} is above the maximum (168h)`);
      else r.checkPeriodMs = ms;
    },
    acceptEnv: (v) => {
      if (v.kind === 'null') return;
      const env = strings(sink, v, 'acceptEnv');
      for (const e of env) if (e.text === '') sink.add(e.pos, 'acceptEnv values cannot be empty');
      r.acceptEnv = env.map((e) => e.text);
    },
  });
  need(sink, o, 'SSH rule', ['action', 'src', 'dst', 'users']);
  if (periodPos && r.action !== 'check' && o.entries.some((e) => e.key === 'checkPeriod' && e.value.kind !== 'null')) {
    sink.add(periodPos, 'checkPeriod is only allowed with action "check"');
  }
  return r;
}

/** Parses Go-style durations made of h, m and s parts ("1h30m"); returns milliseconds. */
export function parseDuration(t: string): number | undefined {
  const m = /^(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$/.exec(t);
  if (!m || t === '') return undefined;
  return (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000;
}

function autoApprovers(sink: ErrorSink, v: JsonNode): AutoApprovers {
  const o = obj(sink, v, 'autoApprovers');
  const out = { routes: [] as AutoApprovers['routes'][number][], exitNode: [] as Alias[] };
  if (!o) return out;
  walk(sink, o, 'autoApprovers', {
    routes: (rv) => {
      for (const { key, keyPos, value } of obj(sink, rv, 'autoApprovers.routes')?.entries ?? []) {
        const pr = prefix(sink, key, keyPos, 'route');
        const approvers = aliases(sink, value, `approvers of ${key}`);
        if (pr) out.routes.push({ prefix: pr, pos: keyPos, approvers });
      }
    },
    exitNode: (ev) => (out.exitNode = aliases(sink, ev, 'exitNode')),
  }, false);
  return out;
}

function nodeAttr(sink: ErrorSink, n: JsonNode): NodeAttr | undefined {
  const o = obj(sink, n, 'a nodeAttrs entry');
  if (!o) return undefined;
  let target: Alias[] = [];
  let attr: { text: string; pos: Pos }[] = [];
  const ipPool: Prefix[] = [];
  walk(sink, o, 'a nodeAttrs entry', {
    target: (v) => (target = aliases(sink, v, 'target')),
    attr: (v) => (attr = strings(sink, v, 'attr')),
    ipPool: (v) => {
      for (const { text, pos } of strings(sink, v, 'ipPool')) {
        const pr = prefix(sink, text, pos, 'ipPool');
        if (pr) ipPool.push(pr);
        if (pr && !(pr.v6 === false && pr.lo >= CGNAT.lo && pr.hi <= CGNAT.hi)) sink.add(pos, `ipPool ${JSON.stringify(text)} must be within 100.64.0.0/10`);
        else if (pr && pr.lo <= CHROMEOS.hi && CHROMEOS.lo <= pr.hi) sink.add(pos, `ipPool ${JSON.stringify(text)} overlaps 100.115.92.0/23, which Tailscale reserves`);
      }
    },
  });
  need(sink, o, 'nodeAttrs entry', ['target']);
  if (!o.entries.some((e) => e.key === 'attr' || e.key === 'ipPool')) sink.add(o.pos, 'nodeAttrs entry needs "attr" or "ipPool"');
  return { pos: o.pos, target, attr, ipPool };
}

const CGNAT = (parsePrefix('100.64.0.0/10') as { prefix: Prefix }).prefix;
const CHROMEOS = (parsePrefix('100.115.92.0/23') as { prefix: Prefix }).prefix;

function testDsts(sink: ErrorSink, v: JsonNode, what: string): TestDst[] {
  return strings(sink, v, what).flatMap(({ text, pos }) => {
    const hp = splitHostPort(text);
    if ('error' in hp) return void sink.add(pos, hp.error), [];
    if (!/^[0-9]{1,5}$/.test(hp.ok.ports) || Number(hp.ok.ports) > 65535) {
      return void sink.add(pos, `test destination ${JSON.stringify(text)} needs a single port, as "host:port"`), [];
    }
    const a = alias(sink, hp.ok.alias, pos);
    const port = Number(hp.ok.ports);
    return a ? [{ alias: a, port: { first: port, last: port }, text, pos }] : [];
  });
}

function singleAlias(sink: ErrorSink, v: JsonNode, what: string): Alias | undefined {
  const t = str(sink, v, what);
  return t === undefined ? undefined : alias(sink, t, v.pos);
}

function accessTest(sink: ErrorSink, n: JsonNode): AccessTest | undefined {
  const o = obj(sink, n, 'a test');
  if (!o) return undefined;
  let src: Alias | undefined;
  let protos: number[] | undefined;
  let protoText: string | undefined;
  let accept: TestDst[] = [];
  let deny: TestDst[] = [];
  walk(sink, o, 'a test', {
    src: (v) => (src = singleAlias(sink, v, 'test src')),
    proto: (v) => {
      protoText = str(sink, v, 'proto');
      const r = protoText === undefined ? undefined : parseProto(protoText);
      if (r && 'error' in r) sink.add(v.pos, r.error);
      else if (r) protos = r.ok;
    },
    accept: (v) => (accept = testDsts(sink, v, 'accept')),
    deny: (v) => (deny = testDsts(sink, v, 'deny')),
  });
  need(sink, o, 'test', ['src']);
  if (!nonEmpty(o, 'accept') && !nonEmpty(o, 'deny')) sink.add(o.pos, 'test needs "accept" or "deny" destinations');
  return src ? { pos: o.pos, src, protos, protoText, accept, deny } : undefined;
}

function sshTest(sink: ErrorSink, n: JsonNode): SshTest | undefined {
  const o = obj(sink, n, 'an SSH test');
  if (!o) return undefined;
  let src: Alias | undefined;
  const t = { dst: [] as Alias[], accept: [] as SshUser[], check: [] as SshUser[], deny: [] as SshUser[] };
  walk(sink, o, 'an SSH test', {
    src: (v) => (src = singleAlias(sink, v, 'sshTests src')),
    dst: (v) => (t.dst = aliases(sink, v, 'dst')),
    accept: (v) => (t.accept = strings(sink, v, 'accept')),
    check: (v) => (t.check = strings(sink, v, 'check')),
    deny: (v) => (t.deny = strings(sink, v, 'deny')),
  });
  need(sink, o, 'SSH test', ['src', 'dst']);
  if (!['accept', 'check', 'deny'].some((k) => nonEmpty(o, k))) sink.add(o.pos, 'SSH test needs "accept", "check" or "deny" users');
  return src ? { pos: o.pos, src, ...t } : undefined;
}
