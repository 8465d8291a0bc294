/** Finding the Tailnet a construct belongs to, and checking that the references it makes are declared there. */
import { Construct, type IConstruct } from 'constructs';
import type { Policy, TailplaneProvider } from '../bindings/index.ts';
import type { PolicyDoc } from './render.ts';
import type { PolicyRef } from './refs.ts';

const TAILNET = Symbol.for('tailplane.constructs.Tailnet');

/** What the parts of a tailnet need from it (implemented by Tailnet; an interface so parts need not import it). */
export interface TailnetScope extends IConstruct {
  readonly provider: TailplaneProvider;
  readonly policyResource: Policy;
  /** Adds a policy contributor; entries render in registration order. */
  register(part: PolicyPart): void;
  /** Whether a tag, group or host of this name is declared in this Tailnet. */
  declares(ref: PolicyRef): boolean;
}

/** A construct that adds entries to the policy document. */
export interface PolicyPart {
  contribute(doc: PolicyDoc): void;
}

export function markTailnet(t: TailnetScope): void {
  Object.defineProperty(t, TAILNET, { value: true });
}

/** The nearest enclosing Tailnet; a construct outside one is a programming error, reported at once. */
export function tailnetOf(scope: IConstruct): TailnetScope {
  for (let s: IConstruct | undefined = scope; s; s = s.node.scope) if (TAILNET in s) return s as unknown as TailnetScope;
  throw new Error(`${scope.node.path || '<root>'} is not inside a Tailnet: create it with a Tailnet (or a construct in one) as scope`);
}

/** Why each reference cannot be used from `tailnet` (empty when all are declared there). */
export function refErrors(tailnet: TailnetScope, refs: Iterable<PolicyRef>): string[] {
  const errors: string[] = [];
  for (const ref of refs) {
    if (Construct.isConstruct(ref)) {
      const home = tailnetOf(ref);
      if (home !== tailnet) errors.push(`${ref.alias} (${ref.node.path}) belongs to another Tailnet (${home.node.path}), not ${tailnet.node.path}`);
      continue;
    }
    if (['tag', 'group', 'host'].includes(ref.refKind) && !tailnet.declares(ref)) {
      errors.push(`${ref.alias} is not declared in Tailnet ${tailnet.node.path}; declare it there (new ${ref.refKind === 'tag' ? 'Tag' : ref.refKind === 'group' ? 'Group' : 'SubnetRoute or tailnet.host'}(...))`);
    }
  }
  return errors;
}

/** Registers a validation on `c` that reports undeclared references; they are computed at synth, after every construct exists. */
export function validateRefs(c: Construct, tailnet: TailnetScope, refs: () => Iterable<PolicyRef>): void {
  c.node.addValidation({ validate: () => refErrors(tailnet, refs()) });
}

/**
 * Adds a policy part to its tailnet's document and checks its references at synth: the one way every rule,
 * test and route construct joins the policy. Returns the tailnet.
 */
export function joinPolicy(part: Construct & PolicyPart, refs: () => Iterable<PolicyRef>): TailnetScope {
  const tailnet = tailnetOf(part);
  tailnet.register(part);
  validateRefs(part, tailnet, refs);
  return tailnet;
}

/** The first free child id `prefix-N` under `scope`, for constructs made by the fluent API. */
export function nextId(scope: IConstruct, prefix: string): string {
  let n = 1;
  while (scope.node.tryFindChild(`${prefix}-${n}`)) n++;
  return `${prefix}-${n}`;
}
