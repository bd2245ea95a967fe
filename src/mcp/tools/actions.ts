/**
 * One typed tool per action the group may call now: for each action `GET /v1/ext/capabilities`
 * says is allowed (its grants' level, allow and deny lists, expiry, L3 approvals, and a provider
 * that can run), a tool named after the action (`github.get_repo` → `github_get_repo`) whose
 * input schema is the action's params (`params_schema`, zod's JSON Schema of them) plus
 * `request_id` (the Idempotency-Key) and, for L2+, `task_id`; whose description states the level,
 * the grant's resource scope and when it expires; annotated `readOnlyHint` for L1,
 * `destructiveHint` for L3 and merges, `idempotentHint` for idempotent actions.
 *
 * An action the group may not call is not listed, but its tool name still works: the call is
 * sent as it is, so the broker answers it exactly as over HTTP (its params checked, then the
 * refusal). A listed tool checks its arguments first and sends nothing when they are invalid.
 */
import { randomUUID } from 'node:crypto';
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import { z } from 'zod';
import { CallResultSchema } from '../../modules/calls/routes/schemas.js';
import type { CapabilityView, CapabilityWatch } from '../capabilities.js';
import type { Parsed, Tool, ToolContext, ToolSource } from '../registry.js';
import { inputSchemaOf, isObjectSchema, outputSchemaOf, paramsRoot, type ObjectSchema } from '../schema.js';
import { CallTaskId, RequestId } from './ext.js';

/** The MCP tool name of an action id: every character outside `[A-Za-z0-9_-]` becomes `_`. */
export function toolNameOf(actionId: string): string {
  return actionId.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** The arguments every action tool takes besides the params. */
const RESERVED = ['request_id', 'task_id'] as const;
const EXTRAS = z.strictObject({
  request_id: RequestId.optional().describe('Idempotency key: reuse it to retry safely (a finished call is replayed, never run twice); a new one is generated when absent'),
  task_id: CallTaskId.optional().describe('The task this call is for: one in DOING or APPROVAL assigned to this group (required by the broker for L2 and L3 actions)'),
});
const L1_EXTRAS = EXTRAS.omit({ task_id: true });

const LEVEL_WORDS: Record<number, string> = { 1: 'L1 (read)', 2: 'L2 (write)', 3: 'L3 (production)' };

/** What the agent reads about an allowed action: what it does, its level, the grant's scope and expiry. */
function descriptionOf(cap: CapabilityView): string {
  const scope = cap.resources === null ? 'any resource' : `resources ${cap.resources.join(', ')}`;
  const expiry = cap.expires_at === null ? 'no expiry' : `expires ${cap.expires_at}`;
  const task = cap.level >= 2 ? ' Needs task_id: a task in DOING or APPROVAL assigned to this group.' : '';
  return `${cap.description} ${LEVEL_WORDS[cap.level] ?? `L${cap.level}`}; grant ${cap.grant_id ?? '?'}: ${scope}; ${expiry}.${task} Reuse request_id to retry safely.`;
}

/** MCP annotations of an action: read-only for L1, destructive for L3 and merges, idempotent as declared. */
export function annotationsOf(cap: Pick<CapabilityView, 'action' | 'level' | 'idempotent'>): ToolAnnotations {
  return {
    title: cap.action,
    readOnlyHint: cap.level === 1,
    destructiveHint: cap.level >= 3 || /(^|[._])merge/.test(cap.action),
    idempotentHint: cap.idempotent,
    openWorldHint: true,
  };
}

/** Splits the arguments into the extras a tool takes (`names`) and the rest (the params). */
function splitExtras(args: Record<string, unknown>, names: readonly string[]): [Record<string, unknown>, Record<string, unknown>] {
  const taken: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) (names.includes(k) ? taken : rest)[k] = v;
  return [taken, rest];
}

/** Formats ajv's message for an agent: `owner must match pattern …` rather than `data/owner must …`. */
const readable = (message: string) => message.replace(/(^|, )data\//g, '$1').replace(/(^|, )data /g, '$1arguments ');

/** The typed action tools, rebuilt whenever the capabilities change. */
export class ActionTools implements ToolSource {
  private builtFor: string | null = null;
  private listedTools: Tool[] = [];
  private byName = new Map<string, Tool>();
  private readonly validators = new AjvJsonSchemaValidator();
  private readonly output: ObjectSchema = outputSchemaOf(CallResultSchema);

  constructor(
    private readonly watch: CapabilityWatch,
    private readonly ctx: ToolContext,
  ) {}

  list(): Tool[] {
    this.build();
    return this.listedTools;
  }

  find(name: string): Tool | undefined {
    this.build();
    return this.byName.get(name);
  }

  private build(): void {
    if (this.builtFor === this.watch.version) return;
    const listed: Tool[] = [];
    const byName = new Map<string, Tool>();
    for (const cap of this.watch.current) {
      const name = toolNameOf(cap.action);
      if (byName.has(name)) continue;
      const tool = cap.allowed ? this.typed(name, cap) : this.passThrough(name, cap);
      byName.set(name, tool);
      if (cap.allowed) listed.push(tool);
    }
    this.listedTools = listed;
    this.byName = byName;
    this.builtFor = this.watch.version;
  }

  /** Sends one call: the params, the task when given, under `request_id` or a new key. */
  private send(action: string, params: unknown, extras: z.infer<typeof EXTRAS>): Promise<CallToolResult> {
    const key = extras.request_id ?? randomUUID();
    const body = { action, params, ...(extras.task_id !== undefined ? { task_id: extras.task_id } : {}) };
    return this.ctx.answer(this.ctx.client.post('/v1/ext/calls', body, { idempotencyKey: key }), key);
  }

  /**
   * The listed tool of an allowed action. Its params schema is merged flat with the extras; an
   * action whose params are not an object, or name a member `request_id` or `task_id`, takes its
   * params under `params` instead.
   */
  private typed(name: string, cap: CapabilityView): Tool {
    const params = paramsRoot(cap.params_schema ?? { type: 'object' });
    const extras = cap.level >= 2 ? EXTRAS : L1_EXTRAS;
    const extrasJson = inputSchemaOf(extras);
    const props = isObjectSchema(params) ? (params.properties ?? {}) : null;
    const flat = props !== null && !RESERVED.some((r) => r in props);
    const { $schema, ...paramsBody } = params;
    const inputSchema: ObjectSchema = flat
      ? { ...(paramsBody as ObjectSchema), properties: { ...props, ...extrasJson.properties } }
      : { type: 'object', properties: { params: paramsBody, ...extrasJson.properties }, required: ['params'], additionalProperties: false };
    if ($schema !== undefined) inputSchema['$schema'] = $schema;
    let check: ((v: unknown) => string | null) | undefined;
    const checkParams = (v: unknown): string | null => {
      check ??= this.compile(params);
      return check(v);
    };
    return {
      name,
      title: cap.action,
      description: descriptionOf(cap),
      inputSchema,
      outputSchema: this.output,
      annotations: annotationsOf(cap),
      parse: (args): Parsed<{ params: unknown; extras: z.infer<typeof EXTRAS> }> => {
        const [taken, rest] = splitExtras(args, Object.keys(extras.shape));
        const e = extras.safeParse(taken);
        if (!e.success) return { ok: false, message: z.prettifyError(e.error) };
        const value = flat ? rest : rest['params'];
        if (!flat) {
          const unknown = Object.keys(rest).filter((k) => k !== 'params');
          if (unknown.length > 0) return { ok: false, message: `unknown argument ${unknown.join(', ')}; this tool takes params, ${Object.keys(extras.shape).join(', ')}` };
        } else if (params['additionalProperties'] === false) {
          const unknown = Object.keys(rest).filter((k) => !(k in props!));
          if (unknown.length > 0) {
            return { ok: false, message: `unknown argument ${unknown.join(', ')}; ${cap.action} takes ${[...Object.keys(props!), ...Object.keys(extras.shape)].join(', ')}` };
          }
        }
        const problem = checkParams(value ?? {});
        return problem === null ? { ok: true, value: { params: value ?? {}, extras: e.data } } : { ok: false, message: problem };
      },
      run: ({ params: p, extras: x }) => this.send(cap.action, p, x),
    };
  }

  /**
   * The unlisted tool of an action the group may not call now: its arguments go to the broker
   * unchecked (but for the extras), so the answer is the one HTTP gives.
   */
  private passThrough(name: string, cap: CapabilityView): Tool {
    return {
      name,
      title: cap.action,
      description: `${cap.description} Not callable by this group now (${cap.code ?? 'denied'}).`,
      inputSchema: { type: 'object' },
      annotations: annotationsOf(cap),
      parse: (args) => {
        const [taken, rest] = splitExtras(args, RESERVED);
        const e = EXTRAS.safeParse(taken);
        return e.success ? { ok: true, value: { params: rest, extras: e.data } } : { ok: false, message: z.prettifyError(e.error) };
      },
      run: ({ params, extras }: { params: unknown; extras: z.infer<typeof EXTRAS> }) => this.send(cap.action, params, extras),
    };
  }

  /** A check of params against their JSON Schema (ajv, as the SDK's client uses); null = valid. */
  private compile(schema: Record<string, unknown>): (v: unknown) => string | null {
    try {
      const validate = this.validators.getValidator(schema as never);
      return (v) => {
        const r = validate(v);
        return r.valid ? null : readable(r.errorMessage);
      };
    } catch {
      // A schema ajv cannot compile: the broker still checks the params (step 2).
      return () => null;
    }
  }
}
