/**
 * Per-route access guards: who may call an operation, by token role or by agent group, and the
 * actor name a principal is recorded under. The authentication middleware (`src/app/authenticate.ts`)
 * sets the principal; these guards only read it.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv, Principal } from './env.js';
import { ApiError } from './problem.js';

/** A bearer token's role: `operator` changes things, `auditor` reads them. */
export type Role = Extract<Principal, { type: 'token' }>['role'];

/** Who may use a route: token roles and/or agent groups (by name). Nobody else. */
export interface Access {
  roles?: readonly Role[];
  groups?: readonly string[];
}

/** True when `principal` is allowed by `access`. */
export function isAllowed(principal: Principal, access: Access): boolean {
  return principal.type === 'token' ? (access.roles ?? []).includes(principal.role) : (access.groups ?? []).includes(principal.group);
}

/**
 * Per-route guard: lets the request through when the authenticated principal matches `access`.
 * @throws ApiError 403 `forbidden` naming who may call the route.
 */
export function requirePrincipal(access: Access): MiddlewareHandler<AppEnv> {
  const who = [...(access.roles ?? []).map((r) => `${r} tokens`), ...(access.groups ?? []).map((g) => `the ${g} group`)].join(', ') || 'nobody';
  return (c, next) => {
    if (!isAllowed(c.get('principal'), access)) {
      throw new ApiError('forbidden', `${describe(c.get('principal'))} may not ${c.req.method} ${c.req.path}; allowed: ${who}.`);
    }
    return next();
  };
}

/** {@link requirePrincipal} for token roles only (no agent group). */
export function requireRole(...roles: Role[]): MiddlewareHandler<AppEnv> {
  return requirePrincipal({ roles });
}

/**
 * The actor string for audit rows and `requested_by`: the group name (`main`) or
 * `<role>:<subject>` (`operator:alice`).
 */
export function principalName(principal: Principal): string {
  return principal.type === 'group' ? principal.group : `${principal.role}:${principal.subject}`;
}

/** The principal as the subject of a sentence: "The main group", "An operator token", "An auditor token". */
function describe(p: Principal): string {
  if (p.type === 'group') return `The ${p.group} group`;
  return `${/^[aeiou]/i.test(p.role) ? 'An' : 'A'} ${p.role} token`;
}
