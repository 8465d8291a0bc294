/**
 * JSON-schema building blocks shared by the admin routes: strict objects (unknown fields are a 400) and
 * the common parameter shapes.
 */
import 'fastify';

export const str = { type: 'string' } as const;
export const bool = { type: 'boolean' } as const;
export const strList = { type: 'array', items: { type: 'string' } } as const;
export const nullableTime = { type: ['string', 'null'] } as const;
export const idString = { type: 'string', pattern: '^[0-9]{1,15}$' } as const;

/** An object schema that rejects unknown properties. */
export function strict(properties: Record<string, unknown>, required: string[] = []) {
  return { type: 'object', additionalProperties: false, properties, required } as const;
}

export const idParams = strict({ id: idString }, ['id']);


declare module 'fastify' {
  interface FastifySchema {
    /** One line for the OpenAPI document. */
    summary?: string;
  }
}
