/**
 * JSON Schemas of the MCP tools: a tool's `inputSchema` and `outputSchema` are JSON Schema objects
 * whose root is `{"type": "object"}` (MCP 2025-11-25, "Tool"; draft 2020-12 unless `$schema` says
 * otherwise). The static tools write theirs in zod and convert them with zod's own
 * `z.toJSONSchema`; the typed action tools take the broker's `params_schema`
 * (`GET /v1/ext/capabilities`), made the same way.
 */
import { z } from 'zod';

/** A JSON Schema whose root is an object, as MCP wants for a tool's input and output. */
export type ObjectSchema = { type: 'object'; properties?: Record<string, object>; required?: string[] } & Record<string, unknown>;

/**
 * Brings a schema's root up from `$defs`: zod writes a schema registered with an id (`.meta({id})`)
 * as `{"$ref": "#/$defs/<id>", "$defs": {…}}`, and MCP wants the root itself to say
 * `type: "object"`. The `$defs` stay (nested members still point into them).
 */
function hoistRoot(schema: Record<string, unknown>): Record<string, unknown> {
  const ref = schema['$ref'];
  const defs = schema['$defs'] as Record<string, Record<string, unknown>> | undefined;
  if (typeof ref !== 'string' || !ref.startsWith('#/$defs/') || defs === undefined) return schema;
  const root = defs[ref.slice('#/$defs/'.length)];
  if (root === undefined) return schema;
  const { $ref: _ref, ...rest } = schema;
  return { ...rest, ...root };
}

/**
 * Whether `schema` is an object schema MCP accepts as a tool's input or output root.
 */
export function isObjectSchema(schema: unknown): schema is ObjectSchema {
  return typeof schema === 'object' && schema !== null && (schema as { type?: unknown }).type === 'object';
}

/**
 * Drops every `additionalProperties: false`, at any depth: an output schema describes what the
 * broker answers, and a broker newer than this MCP server may add a member (the SDK's client
 * refuses a result its tool's output schema rejects, which would make the tool unusable).
 */
function openUp(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(openUp);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'additionalProperties' && v === false) continue;
    out[k] = openUp(v);
  }
  return out;
}

/**
 * A tool's input schema from a zod object: what the tool accepts (`io: "input"`, so members with
 * a default are optional), strict objects giving `additionalProperties: false`.
 * @throws Error when the root is not an object (a programming error in a tool definition).
 */
export function inputSchemaOf(schema: z.ZodType): ObjectSchema {
  const json = hoistRoot(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>);
  if (!isObjectSchema(json)) throw new Error('a tool input schema must be an object');
  return json;
}

/**
 * A tool's output schema from the zod schema of the broker's answer (`io: "output"`), opened up
 * (see {@link openUp}) so a member added by a newer broker does not fail the client.
 * @throws Error when the root is not an object.
 */
export function outputSchemaOf(schema: z.ZodType): ObjectSchema {
  const json = openUp(hoistRoot(z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as Record<string, unknown>));
  if (!isObjectSchema(json)) throw new Error('a tool output schema must be an object');
  return json;
}

/** An action's `params_schema` brought up from `$defs` when zod wrote it as a reference. */
export function paramsRoot(schema: Record<string, unknown>): Record<string, unknown> {
  return hoistRoot(schema);
}
