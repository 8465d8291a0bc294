/** The plan/apply/drift engine's public face, shared by the CLI and the Terraform provider; it prints nothing itself. */
export {
  validateDesired,
  DesiredStateError,
  type DesiredState,
  type DesiredUser,
  type DesiredNode,
  type DesiredDns,
  type DesiredPreAuthKey,
  type AclRule,
  type Grant,
  type SshRule,
  type AutoApprovers,
  type NodeAttr,
  type PolicyTest,
  type SshTest,
  type Problem,
} from './desired.ts';
export { loadDesired } from './load.ts';
export { policyDocument, renderPolicy, managesPolicy, sameJson } from './policy-doc.ts';
export { readLive, type LiveState } from './live.ts';
export { planChanges, type Plan, type Change, type AttrDiff } from './plan.ts';
export { applyPlan, applyChange, checkPlanPolicy, converge, PolicyRefusedError, type ApplyOptions, type ApplyResult, type Progress } from './apply.ts';
export { applyPlanAtomically, changeOperations, type AtomicApplyOptions } from './atomic.ts';
export { driftReport, renderDriftMarkdown, type DriftReport, type DriftItem } from './drift.ts';
export { renderPlan } from './render.ts';
export { matchNodes, matchPreAuthKeys, keySignature } from './match.ts';
