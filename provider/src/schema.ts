/** A small schema language for resources and its translation to tfplugin6 Schema messages and cty object types. */
import type { CtyType, CtyValue } from './cty.ts';

export interface Attr {
  readonly type: CtyType;
  readonly description: string;
  readonly required?: boolean;
  readonly optional?: boolean;
  readonly computed?: boolean;
  readonly sensitive?: boolean;
  /** A change to this attribute replaces the object (RequiresReplace). */
  readonly forceNew?: boolean;
  /** Planned when the configuration leaves the attribute null; the attribute must be optional and computed. */
  readonly default?: CtyValue;
}

export interface Block {
  readonly description: string;
  readonly attributes: Readonly<Record<string, Attr>>;
}

/** The object type a block's values have on the wire (attributes only: this provider uses no nested blocks). */
export function objectType(block: Block): CtyType {
  return ['object', Object.fromEntries(Object.entries(block.attributes).map(([k, a]) => [k, a.type]))];
}

/** The tfplugin6 `Schema` message for a block. */
export function toProtoSchema(block: Block, version = 0) {
  return {
    version,
    block: {
      version,
      description: block.description,
      description_kind: 'PLAIN',
      attributes: Object.entries(block.attributes).map(([name, a]) => ({
        name,
        type: Buffer.from(JSON.stringify(a.type)),
        description: a.description,
        required: a.required ?? false,
        optional: a.optional ?? false,
        computed: a.computed ?? false,
        sensitive: a.sensitive ?? false,
        description_kind: 'PLAIN',
      })),
      block_types: [],
    },
  };
}
