/**
 * `policies/webhooks.json`: where notifications go. Each endpoint names a URL, the environment
 * variable holding its Standard Webhooks secret (`whsec_…`; the secret itself is never in the
 * file), and the event types it wants. Validated with zod when `broker serve` starts; a malformed
 * file, or an endpoint whose secret variable is unset or not a `whsec_` secret, stops the start
 * (fail-closed: a notification is never sent unsigned). An absent file turns webhooks off.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/** The event types a webhook endpoint can subscribe to (docs/notifications.md). */
export const EVENT_TYPES = [
  'grant.awaiting_approval',
  'grant.activated',
  'grant.rejected',
  'grant.revoked',
  'grant.expiring',
  'grant_request.created',
  'gate.overridden',
  'calls.refused_burst',
  'quota.soft_exceeded',
  'provider.circuit_opened',
  'provider.circuit_closed',
] as const;
/** One of {@link EVENT_TYPES}. */
export type EventType = (typeof EVENT_TYPES)[number];

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const Endpoint = z
  .object({
    /** Stable name of the endpoint (deliveries are keyed by it). */
    id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'lower-case letters, digits, "-" and "_", at most 64'),
    /** https, or http to a loopback address only. */
    url: z
      .string()
      .url()
      .refine((u) => {
        const url = new URL(u);
        return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname));
      }, 'must be https (http only to 127.0.0.1, ::1 or localhost)'),
    /** The environment variable holding the endpoint's `whsec_` secret. */
    secret_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
    events: z.array(z.enum(EVENT_TYPES)).min(1),
  })
  .strict();

const WebhooksFile = z
  .object({
    endpoints: z.array(Endpoint).default([]),
    /** `calls.refused_burst`: `threshold` refused calls of one group within one fixed window of `window_s` seconds. */
    refused_burst: z
      .object({ threshold: z.number().int().min(1).max(1_000_000).default(20), window_s: z.number().int().min(1).max(86_400).default(300) })
      .strict()
      .default({ threshold: 20, window_s: 300 }),
    /** `grant.expiring`: sent once per grant when it is active and expires within this many seconds. */
    expiring_within_s: z.number().int().min(60).max(30 * 86_400).default(3600),
    delivery: z
      .object({
        /** Attempts before a delivery is `failed`. */
        max_attempts: z.number().int().min(1).max(100).default(10),
        /** The first retry's delay (ms); each next one doubles, up to `max_delay_ms`, with jitter. */
        initial_delay_ms: z.number().int().min(10).max(3_600_000).default(5000),
        max_delay_ms: z.number().int().min(10).max(86_400_000).default(3_600_000),
        /** A request that has not answered after this many ms is a failed attempt. */
        timeout_ms: z.number().int().min(100).max(120_000).default(10_000),
        /** How often the outbox and the due deliveries are polled (ms). */
        poll_ms: z.number().int().min(10).max(60_000).default(1000),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((f, ctx) => {
    const seen = new Set<string>();
    f.endpoints.forEach((e, i) => {
      if (seen.has(e.id)) ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'id'], message: `duplicate endpoint id "${e.id}"` });
      seen.add(e.id);
    });
  });

/** One configured endpoint, its secret resolved from the environment. */
export interface WebhookEndpoint {
  id: string;
  url: string;
  events: readonly EventType[];
  /** The `whsec_…` secret (held in memory only; never logged, stored or sent). */
  secret: string;
}

/** The parsed `webhooks.json`. Times: `windowS`, `expiringWithinS` in seconds; delivery times in ms. */
export interface WebhookPolicy {
  endpoints: readonly WebhookEndpoint[];
  refusedBurst: { threshold: number; windowS: number };
  expiringWithinS: number;
  delivery: { maxAttempts: number; initialDelayMs: number; maxDelayMs: number; timeoutMs: number; pollMs: number };
}

/**
 * Loads and validates `<policiesDir>/webhooks.json`, resolving each endpoint's secret from `env`.
 * @returns the policy, or null when the file is absent (webhooks off).
 * @throws Error naming the file and the first invalid field, or the endpoint whose `secret_env`
 *   is unset or does not hold a `whsec_` secret.
 */
export function loadWebhooks(policiesDir: string, env: NodeJS.ProcessEnv = process.env): WebhookPolicy | null {
  const file = path.join(policiesDir, 'webhooks.json');
  if (!fs.existsSync(file)) return null;
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  const parsed = WebhooksFile.safeParse(json);
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const f = parsed.data;
  const endpoints = f.endpoints.map((e) => {
    const secret = env[e.secret_env];
    if (!secret) throw new Error(`${file}: endpoint "${e.id}": the environment variable ${e.secret_env} (its secret) is not set`);
    if (!/^whsec_[A-Za-z0-9+/=]{16,}$/.test(secret)) throw new Error(`${file}: endpoint "${e.id}": ${e.secret_env} must hold a Standard Webhooks secret "whsec_<base64>"`);
    return { id: e.id, url: e.url, events: e.events, secret };
  });
  return {
    endpoints,
    refusedBurst: { threshold: f.refused_burst.threshold, windowS: f.refused_burst.window_s },
    expiringWithinS: f.expiring_within_s,
    delivery: {
      maxAttempts: f.delivery.max_attempts,
      initialDelayMs: f.delivery.initial_delay_ms,
      maxDelayMs: f.delivery.max_delay_ms,
      timeoutMs: f.delivery.timeout_ms,
      pollMs: f.delivery.poll_ms,
    },
  };
}
