/**
 * The tfplugin6 Provider service: schemas, provider configuration, and dispatch of each resource RPC to its
 * resource type through the generic planner, with every failure reported as a diagnostic.
 */
import { fromDynamic, fromJson, hasUnknown, toDynamic, type CtyObject } from './cty.ts';
import { diagFromError, errorDiag, type Diagnostic } from './diagnostics.ts';
import type { Logger } from './log.ts';
import { basePlan, complete, settle } from './planner.ts';
import type { DataSource, ManagedResource, Private } from './resource.ts';
import { objectType, toProtoSchema, type Block } from './schema.ts';
import { createTailnetApi, isNotFound, type TailnetApi } from './tailnet-api.ts';
import { str } from './values.ts';

export const providerSchema: Block = {
  description: 'Manages a tailplane tailnet (users, pre-auth keys, nodes, policy, DNS) through its admin API.',
  attributes: {
    server_url: { type: 'string', optional: true, description: 'The tailplane server URL (default: $TAILPLANE_URL).' },
    api_key: { type: 'string', optional: true, sensitive: true, description: 'An admin API key (default: $TAILPLANE_API_KEY).' },
  },
};

type Req = Record<string, any>;
type Res = Record<string, unknown>;
type DV = { msgpack?: Uint8Array; json?: Uint8Array } | null | undefined;

const capabilities = { plan_destroy: false, get_provider_schema_optional: true, move_resource_state: false };

export interface ProviderOptions {
  resources: ManagedResource[];
  dataSources: DataSource[];
  log: Logger;
  env?: NodeJS.ProcessEnv;
}

export function createProvider(opts: ProviderOptions) {
  const resources = new Map(opts.resources.map((r) => [r.typeName, r]));
  const dataSources = new Map(opts.dataSources.map((d) => [d.typeName, d]));
  const env = opts.env ?? process.env;
  let api: TailnetApi | null = null;

  const decode = (dv: DV, block: Block) => fromDynamic(dv, objectType(block)) as CtyObject | null;
  const encode = (v: CtyObject | null, block: Block) => toDynamic(v, objectType(block));
  const errors = (diags: Diagnostic[]) => diags.some((d) => d.severity === 'ERROR');

  function resource(name: string): ManagedResource {
    const r = resources.get(name);
    if (!r) throw new Error(`unknown resource type "${name}"`);
    return r;
  }

  function configured(): TailnetApi {
    if (!api) throw new Error('the provider is not configured (its server_url or api_key is unknown or missing)');
    return api;
  }

  const handlers: Record<string, (req: Req) => Promise<Res>> = {
    async GetMetadata() {
      return {
        server_capabilities: capabilities,
        resources: [...resources.keys()].map((type_name) => ({ type_name })),
        data_sources: [...dataSources.keys()].map((type_name) => ({ type_name })),
      };
    },

    async GetProviderSchema() {
      return {
        provider: toProtoSchema(providerSchema),
        resource_schemas: Object.fromEntries([...resources].map(([k, r]) => [k, toProtoSchema(r.schema, r.schemaVersion)])),
        data_source_schemas: Object.fromEntries([...dataSources].map(([k, d]) => [k, toProtoSchema(d.schema)])),
        server_capabilities: capabilities,
      };
    },

    async GetFunctions() {
      return { functions: {} };
    },

    async ValidateProviderConfig(req) {
      const config = decode(req.config, providerSchema) ?? {};
      const url = str(config, 'server_url');
      if (url !== null && !URL.canParse(url)) return { diagnostics: [errorDiag('Invalid server_url', `"${url}" is not a URL`, 'server_url')] };
      return {};
    },

    async ConfigureProvider(req) {
      const config = decode(req.config, providerSchema) ?? {};
      if (hasUnknown(config)) return {}; // Not known until apply: resource RPCs will say so if they need the API.
      const url = str(config, 'server_url') ?? env.TAILPLANE_URL ?? '';
      const apiKey = str(config, 'api_key') ?? env.TAILPLANE_API_KEY ?? '';
      const missing = [!url && 'server_url (or $TAILPLANE_URL)', !apiKey && 'api_key (or $TAILPLANE_API_KEY)'].filter(Boolean);
      if (missing.length > 0) return { diagnostics: [errorDiag('Incomplete provider configuration', `set ${missing.join(' and ')}`)] };
      api = createTailnetApi({ url, apiKey });
      opts.log.log('debug', 'configured', { server_url: url, terraform_version: req.terraform_version });
      return {};
    },

    async ValidateResourceConfig(req) {
      const r = resource(req.type_name);
      const config = decode(req.config, r.schema) ?? {};
      return { diagnostics: r.validate ? await r.validate(config, api) : [] };
    },

    async ValidateDataResourceConfig() {
      return {};
    },

    async UpgradeResourceState(req) {
      const r = resource(req.type_name);
      const raw: Uint8Array | undefined = req.raw_state?.json;
      if (!raw || raw.length === 0) {
        return { diagnostics: [errorDiag('Unsupported state', 'only JSON state can be upgraded (legacy flatmap state is not supported)')] };
      }
      // Version 0 is the only schema version so far: coercion to the current type fills or drops attributes.
      const state = fromJson(raw, objectType(r.schema)) as CtyObject | null;
      return { upgraded_state: encode(state && complete(r.schema, state), r.schema) };
    },

    async ReadResource(req) {
      const r = resource(req.type_name);
      const current = decode(req.current_state, r.schema);
      if (current === null) return { new_state: encode(null, r.schema), private: req.private };
      const live = await r.read(configured(), current, parsePrivate(req.private));
      return { new_state: encode(live && complete(r.schema, live), r.schema), private: req.private };
    },

    async PlanResourceChange(req) {
      const r = resource(req.type_name);
      const proposed = decode(req.proposed_new_state, r.schema);
      if (proposed === null) return { planned_state: encode(null, r.schema), planned_private: req.prior_private };
      const prior = decode(req.prior_state, r.schema);
      const config = decode(req.config, r.schema) ?? {};
      const { planned, requiresReplace } = basePlan(r.schema, config, prior, proposed);
      const diagnostics = r.plan ? await r.plan({ api, config, prior, planned, requiresReplace }) : [];
      return {
        planned_state: encode(planned, r.schema),
        requires_replace: [...requiresReplace].map((name) => ({ steps: [{ attribute_name: name }] })),
        planned_private: prior ? req.prior_private : Buffer.alloc(0),
        diagnostics,
      };
    },

    async ApplyResourceChange(req) {
      const r = resource(req.type_name);
      const prior = decode(req.prior_state, r.schema);
      const planned = decode(req.planned_state, r.schema);
      const priv = parsePrivate(req.planned_private);
      const a = configured();
      try {
        if (planned === null) {
          await r.delete(a, prior!, priv).catch((err) => {
            if (!isNotFound(err)) throw err; // Already gone is what we wanted.
          });
          return { new_state: encode(null, r.schema) };
        }
        if (prior === null) {
          const created = await r.create(a, planned);
          return { new_state: encode(settle(r.schema, planned, created.state), r.schema), private: privateBytes(created.private ?? null) };
        }
        const updated = await r.update(a, prior, planned);
        return { new_state: encode(settle(r.schema, planned, updated), r.schema), private: req.planned_private };
      } catch (err) {
        // The object is as it was: absent for a failed create, the prior state otherwise.
        return { new_state: encode(prior, r.schema), private: req.planned_private, diagnostics: [diagFromError(err, `Cannot apply ${req.type_name}`)] };
      }
    },

    async ImportResourceState(req) {
      const r = resource(req.type_name);
      const state = complete(r.schema, await r.import(configured(), req.id));
      return { imported_resources: [{ type_name: req.type_name, state: encode(state, r.schema) }] };
    },

    async ReadDataSource(req) {
      const d = dataSources.get(req.type_name);
      if (!d) throw new Error(`unknown data source "${req.type_name}"`);
      const config = decode(req.config, d.schema) ?? {};
      return { state: encode(complete(d.schema, await d.read(configured(), config)), d.schema) };
    },

    async StopProvider() {
      return { Error: '' };
    },
  };

  /** Runs one RPC; anything thrown becomes an error diagnostic so Terraform shows it with context. */
  async function call(method: string, req: Req): Promise<Res> {
    const h = handlers[method];
    if (!h) throw new Error(`unimplemented ${method}`);
    opts.log.log('trace', `rpc ${method}`, { type_name: req.type_name });
    try {
      const res = await h(req);
      const diags = (res.diagnostics as Diagnostic[] | undefined) ?? [];
      if (errors(diags)) opts.log.log('debug', `${method} returned errors`, { summary: diags.map((d) => d.summary) });
      return res;
    } catch (err) {
      opts.log.log('error', `${method} failed`, { error: String(err) });
      return { diagnostics: [diagFromError(err, `${method} failed`)] };
    }
  }

  return { methods: Object.keys(handlers), call, close: () => api?.close() };
}

export type Provider = ReturnType<typeof createProvider>;

function parsePrivate(bytes: Uint8Array | undefined): Private {
  if (!bytes || bytes.length === 0) return null;
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as Private;
  } catch {
    return null;
  }
}

function privateBytes(p: Private): Buffer {
  return p === null ? Buffer.alloc(0) : Buffer.from(JSON.stringify(p));
}
