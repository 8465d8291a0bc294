/** L2 constructs for a tailplane tailnet: typed users, groups, tags, nodes and rules that synthesize one HuJSON policy. */
export { Tailnet, HostRef, type TailnetProps } from './tailnet.ts';
export { User, Group, Tag, type UserProps, type GroupProps, type TagProps, type SshOptions, type ReachOptions } from './principals.ts';
export { Node, SubnetRoute, ExitNode, type NodeProps, type SubnetRouteProps, type ExitNodeProps } from './node.ts';
export { AclRule, Grant, SshRule, AclTest, type AclRuleProps, type GrantProps, type SshRuleProps, type AclTestProps, type Protocol } from './rules.ts';
export { Dns, type DnsProps } from './dns.ts';
export { PreAuthKey, type PreAuthKeyProps } from './preauth-key.ts';
export { Autogroup, Ref, cidr, anything, type PolicyRef, type AclSource, type AclTarget, type SshSource, type SshTarget, type TestSource, type TestTarget, type TagOwner, type Port, type Ports } from './refs.ts';
