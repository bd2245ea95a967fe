/**
 * The route contracts as the app registered them (`createApp(deps).openAPIRegistry`), and a check
 * of a real answer against the contract of its route: the status must be declared, the media
 * type must be one the status declares, the body must parse with that status's zod schema (the
 * schema the route file declares, never a copy), and the declared response headers must parse.
 */
import { expect } from 'vitest';
import type { z } from 'zod';
import type { RouteConfig } from '../../src/platform/http/contract.js';
import type { createApp } from '../../src/app/app.js';

/** `METHOD /path/:param`, as Hono lists a route. */
export type RouteKey = string;

/** An answer to check: what `fetch` gave (status, headers) and the body parsed as JSON when it was JSON. */
export interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** The key of a contract: its method and its path with `{id}` written `:id`. */
export function keyOf(route: Pick<RouteConfig, 'method' | 'path'>): RouteKey {
  return `${route.method.toUpperCase()} ${route.path.replace(/\{([^}]+)\}/g, ':$1')}`;
}

/** Every registered contract of an app, by {@link keyOf}. */
export function contractsOf(app: ReturnType<typeof createApp>): Map<RouteKey, RouteConfig> {
  const out = new Map<RouteKey, RouteConfig>();
  for (const def of app.openAPIRegistry.definitions) {
    if (def.type !== 'route') continue;
    const key = keyOf(def.route);
    expect(out.has(key), `${key} registered twice`).toBe(false);
    out.set(key, def.route);
  }
  return out;
}

type ResponseEntry = { headers?: z.ZodObject; content?: Record<string, { schema: z.ZodType }> };

/**
 * Checks answers against contracts and remembers, per route, which statuses were checked.
 */
export class ContractChecker {
  /** Statuses checked, by route. */
  readonly seen = new Map<RouteKey, Set<number>>();

  constructor(readonly contracts: Map<RouteKey, RouteConfig>) {}

  /**
   * Asserts that `res` is an answer `key`'s contract declares, body and headers included.
   * @returns `res`, for chaining.
   */
  check<A extends Answer>(key: RouteKey, res: A): A {
    const route = this.contracts.get(key);
    expect(route, `no contract for ${key}`).toBeDefined();
    const where = `${key} → ${res.status} ${JSON.stringify(res.body)?.slice(0, 400)}`;
    const entry = (route!.responses as Record<string, ResponseEntry | undefined>)[String(res.status)];
    expect(entry, `undeclared status: ${where}`).toBeDefined();
    const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    const content = entry!.content ?? {};
    const declared = Object.keys(content);
    expect(declared, `undeclared media type ${type}: ${where}`).toContain(type);
    const schema = content[type]!.schema;
    const parsed = schema.safeParse(res.body);
    expect(parsed.success, `body does not match the declared schema: ${where}\n${parsed.success ? '' : JSON.stringify(parsed.error.issues, null, 1)}`).toBe(true);
    if (entry!.headers) {
      const headers: Record<string, string> = {};
      for (const name of Object.keys(entry!.headers.shape)) {
        const value = res.headers.get(name);
        if (value !== null) headers[name] = value;
      }
      const h = entry!.headers.safeParse(headers);
      expect(h.success, `headers do not match the declared ones: ${where}\n${h.success ? '' : JSON.stringify(h.error.issues)}`).toBe(true);
    }
    let statuses = this.seen.get(key);
    if (!statuses) this.seen.set(key, (statuses = new Set()));
    statuses.add(res.status);
    return res;
  }
}
