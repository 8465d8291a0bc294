/** The policy engine's public face: parse and validate HuJSON policies, compile them per node, run their tests, diff access. */
import { combine, PolicyError, sortErrors } from './errors.ts';
import { parseStructure } from './parse.ts';
import { checkDomains, validatePolicy } from './validate.ts';
import { compilePolicy } from './compile.ts';
import { runPolicyTests } from './tests.ts';
import type { Topology } from './topology.ts';
import type { Policy } from './types.ts';

export { PolicyError } from './errors.ts';
export { compilePolicy, type CompiledPolicy, type CompileOptions, type NodeView } from './compile.ts';
export { runPolicyTests } from './tests.ts';
export { diffAccess, renderAccessDiff, type AccessChange } from './diff.ts';
export { reachOf, subjectNodes, type Reach, type ReachRow, type ReachSubject } from './reach.ts';
export { isPolicyName, protoName } from './alias.ts';
export { liveTopology, type ChangedNode, type LiveTopology, type Topology, type TopologyCache, type TopologyIndex, type TopologyNode, type TopologyUser } from './topology.ts';
export type { SourceCache } from './rules.ts';
export type { Policy } from './types.ts';
export type { FilterRule, SshPolicy, SshRuleWire, SshAction, NetPortRange, CapGrant } from './wire.ts';
export type { Principal } from './resolve.ts';
export { heldBy, type HeldBy } from './ssh-check.ts';
export { noiseUrlBase } from './noise-url.ts';

/** Parses and validates a policy; throws a PolicyError (listing every problem, one `file:line:col: ...` per line). */
export function parsePolicy(text: string, fileName: string): Policy {
  const { policy, errors } = parseStructure(text, fileName);
  const all = errors.length > 0 ? errors : validatePolicy(policy);
  if (all.length > 0) throw combine(all);
  return policy;
}

/**
 * Everything wrong with a policy: syntax, shape, semantics, and (when it is otherwise valid) failing `tests` and
 * `sshTests`, run against `topology` or, without one, against an empty tailnet (tests then use synthetic identities).
 */
export function checkPolicy(text: string, fileName: string, topology?: Topology): PolicyError[] {
  const { policy, errors } = parseStructure(text, fileName);
  if (errors.length > 0) return sortErrors(errors);
  const semantic = [...validatePolicy(policy), ...checkDomains(policy, (topology?.users ?? []).map((u) => u.email ?? u.name))];
  if (semantic.length > 0) return sortErrors(semantic);
  // Only the tests need the policy compiled against the tailnet: a 10,000-node policy change spent ~0.1 s,
  // before any client heard of it, compiling for a check that had nothing to run.
  if (policy.tests.length === 0 && policy.sshTests.length === 0) return [];
  return sortErrors(runPolicyTests(compilePolicy(policy, topology ?? { users: [], nodes: [] })));
}
