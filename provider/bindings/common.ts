/** Shared pieces of the hand-written cdktf bindings: the provider's address and camelCase-to-snake_case attribute mapping. */
import * as cdktf from 'cdktf';
import type { Construct } from 'constructs';

/** Must equal providerSource/providerVersion in provider/src/registry.ts (a test pins this); copied so bindings stay server-free. */
export const providerSource = 'terraform.local/tailplane/tailplane';
export const providerVersion = '0.1.0';

/** What every resource and data source passes to its base class: ties it to the `tailplane` provider construct. */
export const generatorMetadata: cdktf.TerraformProviderGeneratorMetadata = {
  providerName: 'tailplane',
  providerVersion,
};

/** How one argument is rendered; names are the provider schema's snake_case names. */
export type AttrKind = 'string' | 'bool' | 'stringList' | 'stringSet' | 'stringListMap' | 'objectList';

export type AttrSpec = Readonly<Record<string, readonly [tfName: string, kind: AttrKind]>>;

const json: Record<AttrKind, (v: unknown) => unknown> = {
  string: cdktf.stringToTerraform,
  bool: cdktf.booleanToTerraform,
  stringList: cdktf.listMapper(cdktf.stringToTerraform, false),
  stringSet: cdktf.listMapper(cdktf.stringToTerraform, false),
  stringListMap: cdktf.hashMapper(cdktf.listMapper(cdktf.stringToTerraform, false)),
  objectList: (v) => v,
};

const hcl: Record<AttrKind, { type: string; storageClassType: string; map: (v: unknown) => unknown }> = {
  string: { type: 'simple', storageClassType: 'string', map: cdktf.stringToHclTerraform },
  bool: { type: 'simple', storageClassType: 'boolean', map: cdktf.booleanToHclTerraform },
  stringList: { type: 'list', storageClassType: 'stringList', map: cdktf.listMapperHcl(cdktf.stringToHclTerraform, false) },
  stringSet: { type: 'set', storageClassType: 'stringList', map: cdktf.listMapperHcl(cdktf.stringToHclTerraform, false) },
  stringListMap: { type: 'map', storageClassType: 'stringListMap', map: cdktf.hashMapperHcl(cdktf.listMapperHcl(cdktf.stringToHclTerraform, false)) },
  objectList: { type: 'list', storageClassType: 'list', map: (v) => v },
};

/** The JSON synth form: `{ snake_name: value }` for every argument (undefined ones are dropped by cdktf). */
export function toTerraform(spec: AttrSpec, config: object): Record<string, unknown> {
  const values = config as Record<string, unknown>;
  return Object.fromEntries(Object.entries(spec).map(([key, [name, kind]]) => [name, json[kind](values[key])]));
}

/** The `synth --hcl` form, which also carries each attribute's shape. */
export function toHclTerraform(spec: AttrSpec, config: object): Record<string, unknown> {
  const values = config as Record<string, unknown>;
  const entries = Object.entries(spec).flatMap(([key, [name, kind]]) => {
    const h = hcl[kind];
    const value = values[key] === undefined ? undefined : h.map(values[key]);
    return value === undefined ? [] : [[name, { value, isBlock: false, type: h.type, storageClassType: h.storageClassType }]];
  });
  return Object.fromEntries(entries);
}

/** Base of every tailplane resource binding: the config is kept as given and rendered through its spec at synth. */
export abstract class TailplaneResource<C extends object> extends cdktf.TerraformResource {
  protected constructor(
    scope: Construct,
    id: string,
    type: string,
    private readonly attrSpec: AttrSpec,
    protected readonly input: C & cdktf.TerraformMetaArguments,
  ) {
    super(scope, id, { terraformResourceType: type, terraformGeneratorMetadata: generatorMetadata, ...metaArguments(input) });
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return toTerraform(this.attrSpec, this.input);
  }

  protected override synthesizeHclAttributes(): Record<string, unknown> {
    return toHclTerraform(this.attrSpec, this.input);
  }
}

/** Base of the data source bindings, the same way round. */
export abstract class TailplaneDataSource<C extends object> extends cdktf.TerraformDataSource {
  protected constructor(
    scope: Construct,
    id: string,
    type: string,
    private readonly attrSpec: AttrSpec,
    protected readonly input: C & cdktf.TerraformMetaArguments,
  ) {
    super(scope, id, { terraformResourceType: type, terraformGeneratorMetadata: generatorMetadata, ...metaArguments(input) });
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return toTerraform(this.attrSpec, this.input);
  }

  protected override synthesizeHclAttributes(): Record<string, unknown> {
    return toHclTerraform(this.attrSpec, this.input);
  }
}

/** Only the Terraform meta-arguments (provider, dependsOn, count, ...) of a config, for the base constructor. */
function metaArguments(c: cdktf.TerraformMetaArguments): cdktf.TerraformMetaArguments {
  const { dependsOn, count, provider, lifecycle, forEach, provisioners, connection } = c;
  return { dependsOn, count, provider, lifecycle, forEach, provisioners, connection };
}
