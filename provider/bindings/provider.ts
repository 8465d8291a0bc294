/** The `tailplane` provider block: where the server is and which admin API key to use (both default to the environment). */
import * as cdktf from 'cdktf';
import type { Construct } from 'constructs';
import { generatorMetadata, providerSource, toHclTerraform, toTerraform, type AttrSpec } from './common.ts';

export interface TailplaneProviderConfig {
  /** The tailplane server URL; the provider falls back to $TAILPLANE_URL. */
  readonly serverUrl?: string;
  /** An admin API key; the provider falls back to $TAILPLANE_API_KEY. */
  readonly apiKey?: string;
  /** A provider alias, for more than one tailnet in a stack. */
  readonly alias?: string;
}

const spec: AttrSpec = { serverUrl: ['server_url', 'string'], apiKey: ['api_key', 'string'], alias: ['alias', 'string'] };

export class TailplaneProvider extends cdktf.TerraformProvider {
  static readonly tfResourceType = 'tailplane';

  constructor(
    scope: Construct,
    id: string,
    private readonly config: TailplaneProviderConfig = {},
  ) {
    super(scope, id, { terraformResourceType: 'tailplane', terraformGeneratorMetadata: generatorMetadata, terraformProviderSource: providerSource });
    this._alias = config.alias;
  }

  private _alias: string | undefined;

  override get alias(): string | undefined {
    return this._alias;
  }
  override set alias(value: string | undefined) {
    this._alias = value;
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return toTerraform(spec, { ...this.config, alias: this._alias });
  }

  protected override synthesizeHclAttributes(): Record<string, unknown> {
    return toHclTerraform(spec, { ...this.config, alias: this._alias });
  }
}
