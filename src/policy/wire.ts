/** tailcfg wire shapes the compiler emits: FilterRule (PascalCase keys) and SSHPolicy (lowercase keys), as clients parse them. */

export interface PortRangeWire {
  readonly First: number;
  readonly Last: number;
}

export interface NetPortRange {
  /** An IP, a CIDR without host bits, or "*"; never with Bits (clients reject the whole filter). */
  readonly IP: string;
  readonly Ports: PortRangeWire;
}

export interface CapGrant {
  readonly Dsts: readonly string[];
  readonly CapMap: Readonly<Record<string, readonly unknown[] | null>>;
}

/** DstPorts and CapGrant are mutually exclusive; IPProto absent = TCP, UDP, ICMPv4, ICMPv6. */
export interface FilterRule {
  readonly SrcIPs: readonly string[];
  readonly DstPorts?: readonly NetPortRange[];
  readonly IPProto?: readonly number[];
  readonly CapGrant?: readonly CapGrant[];
}

/** tailcfg.FilterAllowAll. */
export const FILTER_ALLOW_ALL: readonly FilterRule[] = [{ SrcIPs: ['*'], DstPorts: [{ IP: '*', Ports: { First: 0, Last: 65535 } }] }];

export type SshPrincipal = { readonly nodeIP: string } | { readonly any: true };

export interface SshAction {
  readonly accept?: boolean;
  readonly reject?: boolean;
  readonly message?: string;
  /** "Check" mode: URL the destination fetches over Noise for the real action. */
  readonly holdAndDelegate?: string;
  /** Go time.Duration, in nanoseconds. */
  readonly sessionDuration?: number;
  readonly allowAgentForwarding?: boolean;
  readonly allowLocalPortForwarding?: boolean;
  readonly allowRemotePortForwarding?: boolean;
}

export interface SshRuleWire {
  readonly principals: readonly SshPrincipal[];
  /** Requested user (or "*") -> local user; "=" = same name, "" = this rule does not match. */
  readonly sshUsers: Readonly<Record<string, string>>;
  readonly action: SshAction;
  readonly acceptEnv?: readonly string[];
}

export interface SshPolicy {
  readonly rules: readonly SshRuleWire[];
}
