/**
 * `policies/limits.json`: rate limits and daily quotas on external calls, and the circuit breaker
 * of each provider. Validated with zod when the broker starts; a malformed file stops the start
 * (fail closed: a brake that was meant to hold must not silently vanish). An absent file gives
 * {@link DEFAULT_LIMITS}: conservative limits on L2 and L3 actions, none on L1 reads, and a
 * breaker of 5 consecutive failures with 30 s before a half-open probe.
 *
 * Every rule that matches a call applies (not only the most specific one): a group-wide cap and a
 * tighter per-action cap both hold, so adding a rule can only make the limits stricter. Counters
 * are kept per rule and per calling group.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { GroupName } from '../identity/groups.js';

const Rule = z
  .object({
    /** Stable id, the counters' key and what refusals and audit rows name. */
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'rule ids are 1–64 of [a-z0-9._-]'),
    /** The calling group, or `*` for every group (each group still has its own counters). */
    group: z.union([GroupName, z.literal('*')]).default('*'),
    /** Only calls to this provider (`github`, `cloudlogs`). */
    provider: z.string().regex(/^[a-z][a-z0-9_-]*$/).optional(),
    /** Only this action (`github.merge_pull`). */
    action: z.string().regex(/^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_]*$/).optional(),
    /** Only actions of this level (1 read, 2 write, 3 production). */
    level: z.union([z.literal(1), z.literal(2), z.literal(3)]).optional(),
    /** Token bucket: this many calls per minute, with a burst of the same size. */
    per_minute: z.number().int().min(1).max(1_000_000).optional(),
    /** Calls per UTC day after which each call is still allowed but the excess is audited once (`quota.soft_exceeded`). */
    daily_soft: z.number().int().min(1).max(100_000_000).optional(),
    /** Calls per UTC day; the next one is refused 429 `quota_exceeded` until the next UTC day. */
    daily_hard: z.number().int().min(1).max(100_000_000).optional(),
  })
  .strict()
  .refine((r) => r.per_minute !== undefined || r.daily_soft !== undefined || r.daily_hard !== undefined, { message: 'a rule sets per_minute, daily_soft or daily_hard' })
  .refine((r) => r.daily_soft === undefined || r.daily_hard === undefined || r.daily_soft <= r.daily_hard, { message: 'daily_soft must not exceed daily_hard' });

const Breaker = z
  .object({
    /** Consecutive failed calls (provider errors, timeouts, 5xx) that open a provider's circuit. */
    consecutive_failures: z.number().int().min(1).max(1000).default(5),
    /** Milliseconds an open circuit refuses calls before one half-open probe is let through. */
    half_open_after_ms: z.number().int().min(10).max(3_600_000).default(30_000),
  })
  .strict();

const LimitsFile = z
  .object({
    rules: z.array(Rule).max(1000),
    breaker: Breaker.default({ consecutive_failures: 5, half_open_after_ms: 30_000 }),
  })
  .strict()
  .refine((f) => new Set(f.rules.map((r) => r.id)).size === f.rules.length, { message: 'rule ids must be unique' });

/** One rule of `limits.json` (counts are calls; windows are a minute for the bucket, a UTC day for quotas). */
export type LimitRule = z.infer<typeof Rule>;

/** The parsed `limits.json`. */
export interface LimitsPolicy {
  /** False when the file is absent (the defaults apply). */
  configured: boolean;
  rules: readonly LimitRule[];
  breaker: { consecutiveFailures: number; halfOpenAfterMs: number };
}

/**
 * The defaults when `limits.json` is absent: L2 writes 60 per minute, 300 a day before the soft
 * notice and 1000 a day at most; L3 production actions 10 per minute, 20 soft and 50 hard a day;
 * L1 reads unlimited here (backpressure bounds them); breaker 5 consecutive failures, 30 s.
 */
export const DEFAULT_LIMITS: LimitsPolicy = {
  configured: false,
  rules: [
    { id: 'default-l2', group: '*', level: 2, per_minute: 60, daily_soft: 300, daily_hard: 1000 },
    { id: 'default-l3', group: '*', level: 3, per_minute: 10, daily_soft: 20, daily_hard: 50 },
  ],
  breaker: { consecutiveFailures: 5, halfOpenAfterMs: 30_000 },
};

/**
 * Reads `<policiesDir>/limits.json`.
 * @returns the policy; {@link DEFAULT_LIMITS} when the file is absent.
 * @throws Error naming the file and the offending field when it is not valid JSON or not a valid policy.
 */
export function loadLimits(policiesDir: string): LimitsPolicy {
  const file = path.join(policiesDir, 'limits.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return DEFAULT_LIMITS;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = LimitsFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const b = parsed.data.breaker;
  return { configured: true, rules: parsed.data.rules, breaker: { consecutiveFailures: b.consecutive_failures, halfOpenAfterMs: b.half_open_after_ms } };
}

/** What a rule is matched against: the calling group and the action (its id, provider and level). */
export interface LimitedCall {
  group: string;
  provider: string;
  action: string;
  level: 1 | 2 | 3;
}

/** The rules of `policy` that apply to `call` (every match applies), in file order. */
export function matchingRules(policy: LimitsPolicy, call: LimitedCall): LimitRule[] {
  return policy.rules.filter(
    (r) =>
      (r.group === '*' || r.group === call.group) &&
      (r.provider === undefined || r.provider === call.provider) &&
      (r.action === undefined || r.action === call.action) &&
      (r.level === undefined || r.level === call.level),
  );
}

/** The counters' key of `rule` for `group`: `<rule id>|<group>`. */
export const counterKey = (rule: Pick<LimitRule, 'id'>, group: string): string => `${rule.id}|${group}`;

/** One UTC day in ms: the quota window. */
export const DAY_MS = 86_400_000;

/** Start of the UTC day holding `nowMs` (Unix ms). */
export const dayStart = (nowMs: number): number => Math.floor(nowMs / DAY_MS) * DAY_MS;
