import { z } from 'zod';
import { BEARER, createRoute, json, problems, type Operation } from '../../../platform/http/contract.js';
import { requireRole } from '../../../platform/http/guard.js';
import type { Clock } from '../../../platform/clock.js';
import { dayStart } from '../../limits/policy.js';
import type { CallValves } from '../valves.js';

const RuleSchema = z
  .object({
    id: z.string(),
    group: z.string(),
    provider: z.string().nullable(),
    action: z.string().nullable(),
    level: z.number().int().nullable(),
    per_minute: z.number().int().nullable(),
    daily_soft: z.number().int().nullable(),
    daily_hard: z.number().int().nullable(),
  })
  .openapi('LimitRule');

const LimitsSchema = z
  .object({
    configured: z.boolean().describe('false: `limits.json` is absent and the defaults apply.'),
    day: z.string().describe('The current quota window: the UTC day starting at this RFC 3339 instant.'),
    rules: z.array(RuleSchema),
    usage: z
      .array(z.object({ rule: z.string(), group: z.string(), count: z.number().int(), soft_notified_at: z.string().nullable() }))
      .describe("Today's count per rule and calling group, in every process (from the database)."),
    breaker: z.object({ consecutive_failures: z.number().int(), half_open_after_ms: z.number().int() }),
    circuits: z
      .array(z.object({ provider: z.string(), state: z.enum(['closed', 'open', 'half_open']), opened_at: z.string().nullable() }))
      .describe('The providers this process has called, with its own circuit state (circuits are per process).'),
  })
  .openapi('Limits');

/**
 * `GET /v1/limits` (operators, auditors): the rate limits and quotas in force with today's usage
 * (from the database, every process) and this process's circuit breakers,
 * `{configured, day, rules, usage, breaker, circuits}`.
 */
export function getLimitsOp(valves: CallValves, clock: Clock): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/limits',
      operationId: 'getLimits',
      tags: ['calls'],
      summary: "Rate limits, quotas and today's usage; this process's circuit breakers",
      security: [BEARER],
      responses: { 200: json('The limits in force and their usage.', LimitsSchema), ...problems() },
    }),
    guard: requireRole('operator', 'auditor'),
    handler: async (c) => {
      const { policy } = valves;
      const day = dayStart(clock.now());
      const rows = valves.deps.store ? await valves.deps.store.usage(day) : [];
      const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
      return c.json({
        configured: policy.configured,
        day: new Date(day).toISOString(),
        rules: policy.rules.map((r) => ({
          id: r.id,
          group: r.group,
          provider: r.provider ?? null,
          action: r.action ?? null,
          level: r.level ?? null,
          per_minute: r.per_minute ?? null,
          daily_soft: r.daily_soft ?? null,
          daily_hard: r.daily_hard ?? null,
        })),
        usage: rows
          .filter((u) => u.windowStart === day)
          .map((u) => {
            const cut = u.key.lastIndexOf('|');
            return { rule: u.key.slice(0, cut), group: u.key.slice(cut + 1), count: u.count, soft_notified_at: iso(u.softNotifiedAt) };
          }),
        breaker: { consecutive_failures: policy.breaker.consecutiveFailures, half_open_after_ms: policy.breaker.halfOpenAfterMs },
        circuits: valves.breakers.states().map((s) => ({ provider: s.provider, state: s.state, opened_at: iso(s.openedAt) })),
      });
    },
  };
}
