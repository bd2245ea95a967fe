/**
 * The tools of the agents' MCP server and the registry that lists and finds them. A tool is a
 * name, a JSON Schema for its input and its output, MCP annotations, an argument check and a
 * handler that sends one signed request (or two: a read, then a write) to the broker. Static tools
 * come in families (`tools/*.ts`, listed in `tools/index.ts`); the typed action tools come from a
 * {@link ToolSource} that follows the group's capabilities.
 *
 * Listing is per group (a tool's {@link Tool.listedFor}); calling is not: every registered tool,
 * listed or not, sends its request, and the broker decides as it does over HTTP.
 */
import type { CallToolResult, Tool as ListedTool, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { BrokerClient, BrokerResponse } from '../client/index.js';
import type { AdviceContext } from './advice.js';
import { answer } from './result.js';
import type { GroupRoles } from './roles.js';
import { inputSchemaOf, outputSchemaOf, type ObjectSchema } from './schema.js';

/** The outcome of checking a tool's arguments: the value to run with, or what is wrong. */
export type Parsed<A> = { ok: true; value: A } | { ok: false; message: string };

/** One tool. `A` is the type of its checked arguments. */
export interface Tool<A = any> {
  name: string;
  /** Older names that still call it (not listed), e.g. `call_action` for `ext_call`. */
  aliases?: readonly string[];
  title?: string;
  description: string;
  inputSchema: ObjectSchema;
  /** The schema of `structuredContent` on success. */
  outputSchema?: ObjectSchema;
  annotations: ToolAnnotations;
  /** Whether a group with these roles sees it in `tools/list`; absent: every group. */
  listedFor?(roles: GroupRoles): boolean;
  /** Checks the arguments; nothing is sent when they are refused. */
  parse(args: Record<string, unknown>): Parsed<A>;
  run(args: A): Promise<CallToolResult>;
}

/** What a tool family is built with. */
export interface ToolContext {
  client: BrokerClient;
  roles: GroupRoles;
  /**
   * {@link answer} with this server's advice: the result of one request, refusals carrying what
   * to do; `requestId` is named on an unreachable broker so the agent retries with it.
   */
  answer(sent: Promise<BrokerResponse>, requestId?: string): Promise<CallToolResult>;
}

/** A family of tools (one file of `tools/`): builds its tools for one server. */
export type ToolFamily = (ctx: ToolContext) => Tool[];

/** Tools that change while the server runs (the typed action tools). */
export interface ToolSource {
  /** The tools to list now. */
  list(): Tool[];
  /** A tool by name, listed or not; undefined when unknown. */
  find(name: string): Tool | undefined;
}

/** Read-only annotations (MCP "ToolAnnotations"): the tool changes nothing. */
export const READ: ToolAnnotations = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false };
/** A write to the broker's own state (tasks, dispatches, gates): neither destructive nor open-world. */
export const WRITE: ToolAnnotations = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false };

/**
 * A tool whose input is a zod object: the input schema is its JSON Schema (zod's
 * `z.toJSONSchema`, input form), the arguments are checked by the schema itself (so a refusal
 * names each member and rule, `z.prettifyError`), and `output` (the zod schema of the broker's
 * answer) becomes the output schema.
 */
export function zodTool<S extends z.ZodType<Record<string, unknown>, Record<string, unknown>>>(
  def: Omit<Tool, 'inputSchema' | 'outputSchema' | 'parse' | 'run'> & { input: S; output: z.ZodType; run(args: z.output<S>): Promise<CallToolResult> },
): Tool<z.output<S>> {
  const { input, output, run, ...rest } = def;
  return {
    ...rest,
    inputSchema: inputSchemaOf(input),
    outputSchema: outputSchemaOf(output),
    parse(args) {
      const r = input.safeParse(args);
      return r.success ? { ok: true, value: r.data } : { ok: false, message: z.prettifyError(r.error) };
    },
    run,
  };
}

/** The registry: static tools by name and alias, then the tool sources. */
export class ToolRegistry implements AdviceContext {
  private readonly tools: Tool[] = [];
  private readonly byName = new Map<string, Tool>();
  private readonly sources: ToolSource[] = [];

  /**
   * Adds static tools.
   * @throws Error when a name or alias is taken (a programming error in the families).
   */
  add(...tools: Tool[]): void {
    for (const tool of tools) {
      for (const name of [tool.name, ...(tool.aliases ?? [])]) {
        if (this.byName.has(name)) throw new Error(`MCP tool ${name} is registered twice`);
        this.byName.set(name, tool);
      }
      this.tools.push(tool);
    }
  }

  /** Adds a source of changing tools; a static tool's name shadows a source's. */
  addSource(source: ToolSource): void {
    this.sources.push(source);
  }

  /** The tools a group with `roles` sees: static ones in registration order, then the sources'. */
  listFor(roles: GroupRoles): Tool[] {
    const own = this.tools.filter((t) => t.listedFor?.(roles) ?? true);
    return [...own, ...this.sources.flatMap((s) => s.list()).filter((t) => !this.byName.has(t.name))];
  }

  /** A tool by name or alias, static first; undefined when unknown. */
  find(name: string): Tool | undefined {
    const own = this.byName.get(name);
    if (own !== undefined) return own;
    for (const source of this.sources) {
      const found = source.find(name);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** Whether a static tool (or alias) of that name exists. */
  hasTool(name: string): boolean {
    return this.byName.has(name);
  }
}

/** A tool as `tools/list` answers it. */
export function listed(tool: Tool): ListedTool {
  return {
    name: tool.name,
    ...(tool.title !== undefined ? { title: tool.title } : {}),
    description: tool.description,
    inputSchema: tool.inputSchema,
    ...(tool.outputSchema !== undefined ? { outputSchema: tool.outputSchema } : {}),
    annotations: tool.annotations,
  } as ListedTool;
}

/** Binds {@link answer} to an advice context, for {@link ToolContext.answer}. */
export function answerWith(advice: AdviceContext): ToolContext['answer'] {
  return (sent, requestId) => answer(sent, advice, requestId);
}
