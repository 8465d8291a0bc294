/** SSH rules resolved once, then reduced per destination node to a tailcfg SSHPolicy; also answers "may X ssh as U to Y?". */
import { principalOf, type Principal, type Resolver } from './resolve.ts';
import { sortIps } from './rules.ts';
import { noiseUrlBase } from './noise-url.ts';
import type { IndexedNode } from './topology.ts';
import type { Alias, SshRule } from './types.ts';
import type { SshAction, SshPolicy, SshRuleWire } from './wire.ts';

/** Tailscale's default re-check interval for "check" rules. */
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

function action(rule: SshRule, opts: SshOptions): SshAction {
  const forwarding = { allowAgentForwarding: true, allowLocalPortForwarding: true, allowRemotePortForwarding: true };
  if (rule.action === 'accept') return { accept: true, ...forwarding };
  const ms = rule.checkPeriodMs ?? DEFAULT_CHECK_PERIOD_MS;
  return {
    holdAndDelegate: `${noiseUrlBase(opts.serverUrl)}/machine/ssh/action/from/$SRC_NODE_ID/to/$DST_NODE_ID?ssh_user=$SSH_USER&local_user=$LOCAL_USER`,
    ...(ms > 0 ? { sessionDuration: ms * 1_000_000 } : {}),
    ...forwarding,
  };
}

/** The SSHPolicy a node enforces as an SSH server. */
export function sshForNode(rules: readonly CompiledSsh[], n: IndexedNode, r: Resolver): SshPolicy {
  const self = principalOf(n);
  const out: SshRuleWire[] = [];
  for (const c of rules) {
    const sources = c.dst.some((a) => r.matches(a, self))
      ? [...c.srcIds]
      : c.hasSelf && n.user !== undefined
        ? (r.topo.byUser.get(n.user) ?? []).filter((m) => c.srcIds.has(m.id)).map((m) => m.id)
        : [];
    if (sources.length === 0) continue;
    const env = c.rule.acceptEnv.length > 0 ? { acceptEnv: c.rule.acceptEnv } : {};
    out.push({ principals: principals(sources, r), sshUsers: c.sshUsers, action: c.action, ...env });
    for (const [user, lp] of localparts(c, sources, r)) {
      const own = sources.filter((id) => r.topo.byId.get(id)!.user === user);
      out.push({ principals: principals(own, r), sshUsers: { [lp]: lp }, action: c.action, ...env });
    }
  }
  return { rules: out };
}

const principals = (ids: readonly number[], r: Resolver) => sortIps(ids, r).map((ip) => ({ nodeIP: ip }));

/** Users among the sources whose e-mail domain matches a `localpart:*@domain` entry, with their local part. */
function localparts(c: CompiledSsh, ids: readonly number[], r: Resolver): [string, string][] {
  if (c.localpartDomains.length === 0) return [];
  const users = [...new Set(ids.map((id) => r.topo.byId.get(id)!.user).filter((u): u is string => u !== undefined))].sort();
  return users.flatMap((u): [string, string][] => {
    const lp = localpartOf(r, u, c.localpartDomains);
    return lp ? [[u, lp]] : [];
  });
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
