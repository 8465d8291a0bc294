/**
 * Builds the admin API's OpenAPI 3 document from the routes' own JSON schemas, so the document cannot drift
 * from what the server validates.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';

interface Operation {
  summary?: string;
  parameters: unknown[];
  requestBody?: unknown;
  responses: unknown;
  security: unknown[];
}

/** Collects routes as they are registered; call `document()` after all routes are added. */
export function openApiCollector(app: FastifyInstance, info: { title: string; version: string }) {
  const paths: Record<string, Record<string, Operation>> = {};
  app.addHook('onRoute', (route: RouteOptions) => {
    if (!route.url.startsWith('/api/')) return;
    const schema = (route.schema ?? {}) as Record<string, any>;
    const path = route.url.replace(/:(\w+)/g, '{$1}');
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== 'HEAD');
    for (const method of methods) {
      (paths[path] ??= {})[method.toLowerCase()] = {
        summary: schema.summary,
        parameters: [...parameters(schema.params, 'path'), ...parameters(schema.querystring, 'query')],
        requestBody: schema.body ? { required: true, content: { 'application/json': { schema: schema.body } } } : undefined,
        responses: {
          200: { description: 'OK' },
          400: { description: 'Invalid request' },
          401: { description: 'Missing or invalid API key' },
          404: { description: 'Not found' },
          409: { description: 'Conflict' },
        },
        security: [{ bearer: [] }],
      };
    }
  });
  return {
    document: () => ({
      openapi: '3.0.3',
      info,
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      paths,
    }),
  };
}

function parameters(schema: Record<string, any> | undefined, where: 'path' | 'query') {
  if (!schema?.properties) return [];
  const required = new Set<string>(schema.required ?? []);
  return Object.entries(schema.properties).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    schema: s,
  }));
}
