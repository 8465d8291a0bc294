/** SSH rules resolved once, then reduced per destination node to a tailcfg SSHPolicy; also answers "may X ssh as U to Y?". */
import { principalOf, type Principal, type Resolver } from './resolve.ts';
import { sortIps } from './rules.ts';
import { noiseUrlBase } from './noise-url.ts';
import type { IndexedNode } from './topology.ts';
import type { Alias, SshRule } from './types.ts';
import type { SshAction, SshPolicy, SshRuleWire } from './wire.ts';

/** Tailscale's default re-check interval for "check" rules (applied when the client calls back; never sent). */
export const DEFAULT_CHECK_PERIOD_MS = 12 * 3_600_000;

export interface CompiledSsh {
  readonly rule: SshRule;
  readonly srcIds: ReadonlySet<number>;
  readonly dst: readonly Alias[];
  readonly hasSelf: boolean;
  readonly sshUsers: Readonly<Record<string, string>>;
  readonly localpartDomains: readonly string[];
  readonly action: SshAction;
}

export interface SshOptions {
  /** Prefix of the check-mode URL (the server's URL); clients fetch it over Noise. */
  readonly serverUrl?: string;
}

export function compileSsh(rules: readonly SshRule[], r: Resolver, opts: SshOptions = {}): CompiledSsh[] {
  const compiled = rules.map((rule): CompiledSsh => {
    const srcIds = new Set<number>();
    for (const a of rule.src) for (const id of r.nodes(a).ids) srcIds.add(id);
    const hasSelf = rule.dst.some((a) => a.kind === 'autogroup' && a.name === 'self');
    return {
      rule, srcIds, hasSelf, dst: rule.dst.filter((a) => !(a.kind === 'autogroup' && a.name === 'self')),
      sshUsers: sshUsers(rule), action: action(rule, opts),
      localpartDomains: rule.users.flatMap((u) => (u.text.startsWith('localpart:*@') ? [u.text.slice(12).toLowerCase()] : [])),
    };
  });
  // Check rules go before accept rules: the client takes the first match, and the stricter action must win.
  return [...compiled.filter((c) => c.rule.action === 'check'), ...compiled.filter((c) => c.rule.action === 'accept')];
}

function sshUsers(rule: SshRule): Record<string, string> {
  const names = rule.users.map((u) => u.text);
  const out: Record<string, string> = {};
  if (names.includes('autogroup:nonroot')) out['*'] = '=';
  out['root'] = names.includes('root') ? 'root' : ''; // "" = this rule never maps to root
  for (const n of names) if (n !== 'root' && !n.startsWith('autogroup:') && !n.startsWith('localpart:')) out[n] = n;
  return out;
}

/** What an accept rule sends, and what a check rule's session gets once approved. */
export const acceptAction: SshAction = Object.freeze({ accept: true, allowAgentForwarding: true, allowLocalPortForwarding: true, allowRemotePortForwarding: true });

/**
 * Accept rules carry the forwarding flags; check rules carry only the HoldAndDelegate URL, as Tailscale sends
 * them: the check period is applied when the client calls back, never sent (headscale
 * hscontrol/policy/v2/filter.go sshCheck and the ssh captures in its testdata).
 */
function action(rule: SshRule, opts: SshOptions): SshAction {
  if (rule.action === 'accept') return acceptAction;
  return { holdAndDelegate: `${noiseUrlBase(opts.serverUrl)}/machine/ssh/action/from/$SRC_NODE_ID/to/$DST_NODE_ID?ssh_user=$SSH_USER&local_user=$LOCAL_USER` };
}

/**
 * The SSHPolicy a node enforces as an SSH server, rule by rule as Tailscale lists it: principals per source user
 * (users in id order, each user's addresses IPv4 first), then tagged sources, a node once per tag it carries.
 * A rule with `localpart:*@domain` users is split per source user, each user's rule followed by the one mapping
 * that user's local part; a source node that is not a destination still gets the rules for its own user.
 */
export function sshForNode(rules: readonly CompiledSsh[], n: IndexedNode, r: Resolver): SshPolicy {
  const self = principalOf(n);
  const out: SshRuleWire[] = [];
  for (const c of rules) {
    const env = c.rule.acceptEnv.length > 0 ? { acceptEnv: c.rule.acceptEnv } : {};
    const emit = (ids: readonly number[], user: string | undefined) => {
      if (ids.length === 0) return;
      out.push({ principals: principals(ids, r), sshUsers: c.sshUsers, action: c.action, ...env });
      const lp = user === undefined ? undefined : localpartOf(r, user, c.localpartDomains);
      if (lp) out.push({ principals: principals(ids, r), sshUsers: { [lp]: lp }, action: c.action, ...env });
    };
    const { byUser, tagged } = groupSources(c.srcIds, r);
    if (c.hasSelf && n.user !== undefined) emit(byUser.get(n.user) ?? [], n.user);
    if (c.dst.some((a) => r.matches(a, self))) {
      if (c.localpartDomains.length > 0) {
        for (const [user, ids] of byUser) emit(ids, user);
        emit(tagged, undefined);
      } else emit([...[...byUser.values()].flat(), ...tagged], undefined);
    } else if (c.dst.length > 0 && c.localpartDomains.length > 0 && c.srcIds.has(n.id)) {
      emit(n.user === undefined ? [n.id] : (byUser.get(n.user) ?? []), n.user);
    }
  }
  return { rules: out };
}

type Grouped = { byUser: Map<string, number[]>; tagged: number[] };
/** Per rule (and so per compile): every destination node of a rule reads the same grouping. */
const grouped = new WeakMap<ReadonlySet<number>, Grouped>();

/** Source nodes per owning user (users in id order) and the tagged ones, each repeated once per tag. */
function groupSources(ids: ReadonlySet<number>, r: Resolver): Grouped {
  let g = grouped.get(ids);
  if (!g) grouped.set(ids, (g = groupOnce(ids, r)));
  return g;
}

function groupOnce(ids: ReadonlySet<number>, r: Resolver): Grouped {
  const order = new Map(r.topo.users.map((u, i) => [u.name, [u.id, i] as const]));
  const byUser = new Map<string, number[]>();
  const tagged: number[] = [];
  const nodes = [...ids].map((id) => r.topo.byId.get(id)!).sort((a, b) => a.id - b.id);
  for (const m of nodes) {
    if (m.tags.length > 0) for (let i = 0; i < m.tags.length; i++) tagged.push(m.id);
    else if (m.user !== undefined) byUser.set(m.user, [...(byUser.get(m.user) ?? []), m.id]);
  }
  const rank = (u: string) => order.get(u)?.[0] ?? Number.MAX_SAFE_INTEGER;
  return { byUser: new Map([...byUser].sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : 1))), tagged };
}

/** Principals for source nodes, IPv4 first; a node listed twice (two tags) appears twice, as Tailscale lists it. */
function principals(ids: readonly number[], r: Resolver): { nodeIP: string }[] {
  const count = new Map<string, number>();
  for (const id of ids) for (const ip of r.topo.byId.get(id)!.ipTexts) count.set(ip, (count.get(ip) ?? 0) + 1);
  return sortIps(new Set(ids), r).flatMap((ip) => Array.from({ length: count.get(ip)! }, () => ({ nodeIP: ip })));
}

function localpartOf(r: Resolver, user: string, domains: readonly string[]): string | undefined {
  const email = r.topo.users.find((u) => u.name === user)?.email ?? (user.includes('@') ? user : undefined);
  const at = email?.lastIndexOf('@') ?? -1;
  if (!email || at < 0 || !domains.includes(email.slice(at + 1).toLowerCase())) return undefined;
  return email.slice(0, at);
}

/** First-match evaluation of "may src ssh to dst as login": the action, or 'deny'. */
export function sshDecision(rules: readonly CompiledSsh[], r: Resolver, src: Principal, dst: Principal, login: string): 'accept' | 'check' | 'deny' {
  for (const c of rules) {
    if (!c.rule.src.some((a) => r.matches(a, src))) continue;
    const sameUser = c.hasSelf && src.user !== undefined && src.user === dst.user && dst.tags.length === 0;
    if (!sameUser && !c.dst.some((a) => r.matches(a, dst))) continue;
    const mapped = c.sshUsers[login] ?? c.sshUsers['*'];
    const lp = src.user === undefined ? undefined : localpartOf(r, src.user, c.localpartDomains);
    if ((mapped !== undefined && mapped !== '') || lp === login) return c.rule.action;
  }
  return 'deny';
}
