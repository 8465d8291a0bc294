/** The contract between the tfplugin6 server and one managed resource type or data source. */
import type { CtyObject } from './cty.ts';
import type { Diagnostic } from './diagnostics.ts';
import type { Block } from './schema.ts';
import type { TailnetApi } from './tailnet-api.ts';

/** Opaque per-object bytes Terraform keeps in state for the provider (here: JSON). */
export type Private = Record<string, unknown> | null;

export interface PlanContext {
  /** Null when the provider is not configured yet (validation) or its configuration is unknown. */
  api: TailnetApi | null;
  config: CtyObject;
  prior: CtyObject | null;
  /** Starts as the generic plan; a resource may refine it (e.g. mark computed attributes unknown). */
  planned: CtyObject;
  /** Attribute names whose change forces replacement; a resource may add to them. */
  requiresReplace: Set<string>;
}

export interface ManagedResource {
  readonly typeName: string;
  readonly schemaVersion: number;
  readonly schema: Block;
  /** Checks known values in a configuration that may still contain unknowns. */
  validate?(config: CtyObject, api: TailnetApi | null): Promise<Diagnostic[]>;
  /** Resource-specific planning after the generic planner; may return diagnostics (e.g. server-side validation). */
  plan?(ctx: PlanContext): Promise<Diagnostic[]>;
  create(api: TailnetApi, planned: CtyObject): Promise<{ state: CtyObject; private?: Private }>;
  /** The live object, or null when it is gone (Terraform then plans to create it again). */
  read(api: TailnetApi, state: CtyObject, priv: Private): Promise<CtyObject | null>;
  update(api: TailnetApi, prior: CtyObject, planned: CtyObject): Promise<CtyObject>;
  delete(api: TailnetApi, prior: CtyObject, priv: Private): Promise<void>;
  /** A full state for the object an import id names (core reads it right after). */
  import(api: TailnetApi, id: string): Promise<CtyObject>;
}

export interface DataSource {
  readonly typeName: string;
  readonly schema: Block;
  read(api: TailnetApi, config: CtyObject): Promise<CtyObject>;
}
