/**
 * The generic part of PlanResourceChange and ApplyResourceChange: defaults, unknown computed values,
 * RequiresReplace from forceNew attributes, and results that keep every known planned value.
 */
import { ctyEqual, hasUnknown, isUnknown, unknown, type CtyObject, type CtyValue } from './cty.ts';
import type { Block } from './schema.ts';

/** The plan before resource-specific refinement: Terraform's proposed state plus defaults and unknowns. */
export function basePlan(block: Block, config: CtyObject, prior: CtyObject | null, proposed: CtyObject) {
  const planned: CtyObject = { ...proposed };
  for (const [name, a] of Object.entries(block.attributes)) {
    if (!a.computed || config[name] !== null) continue;
    if (a.default !== undefined) planned[name] = structuredClone(a.default);
    // Core proposes the prior value for a null computed attribute; at create there is none yet.
    else if (prior === null) planned[name] = unknown;
  }
  const requiresReplace = new Set<string>();
  if (prior !== null) {
    for (const [name, a] of Object.entries(block.attributes)) {
      if (a.forceNew && !ctyEqual(a.type, prior[name] ?? null, planned[name] ?? null)) requiresReplace.add(name);
    }
  }
  return { planned, requiresReplace };
}

/**
 * An apply result Terraform accepts: every known planned value exactly as planned (the server may only have
 * normalised it; a later read reports real drift), unknowns filled from the result, never left unknown.
 */
export function settle(block: Block, planned: CtyObject, result: CtyObject): CtyObject {
  const out: CtyObject = {};
  for (const name of Object.keys(block.attributes)) {
    const p = planned[name] ?? null;
    out[name] = hasUnknown(p) ? known(result[name] ?? null) : p;
  }
  return out;
}

/** Every attribute of the block present (null when missing) and no unknowns: what reads and imports return. */
export function complete(block: Block, value: CtyObject): CtyObject {
  return Object.fromEntries(Object.keys(block.attributes).map((k) => [k, known(value[k] ?? null)]));
}

function known(v: CtyValue): CtyValue {
  if (isUnknown(v)) return null;
  if (Array.isArray(v)) return v.map(known);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, known(x)]));
  return v;
}
