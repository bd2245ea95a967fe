/**
 * A provider only the call tests register (`test.*`): it records every attempt and can be told,
 * per call, to fail transiently, to fail for good with a secret in its error, to hang until the
 * broker's timeout aborts it, or to wait until the test releases it.
 */
import { z } from 'zod';
import { registerSecret } from '../../src/platform/audit/redact.js';
import { defineAction, ProviderError, type ActionDefinition, type ActionLevel, type Provider } from '../../src/providers/contract.js';

/** A credential the provider "leaks" into its errors; registered for redaction like a real token. */
export const PROVIDER_SECRET = 'prov-secret-6f1d2c9a4b7e';
registerSecret(PROVIDER_SECRET);

const Params = z.strictObject({
  resource: z.string().min(1).default('acme/api'),
  /** Fail transiently (ProviderError 503) on the first `fail` attempts of this call. */
  fail: z.number().int().min(0).max(10).default(0),
  /** Fail for good: ProviderError 404 carrying a secret in its message and details. */
  reject: z.boolean().default(false),
  /** Never answer until the broker aborts the attempt (timeout). */
  hang: z.boolean().default(false),
  /** Wait until the test calls `release()`. */
  wait: z.boolean().default(false),
});

/** One attempt the provider saw. */
export interface Attempt {
  action: string;
  requestId: string;
  group: string;
  taskId: string | null;
}

/** The test provider and the handles a test drives it with. */
export interface TestProvider {
  provider: Provider;
  attempts: Attempt[];
  /** Attempts of one request id. */
  attemptsOf(requestId: string): number;
  /** Calls currently waiting for {@link release}. */
  waiting(): number;
  /** Resolves every waiting call (and those that start waiting later, until `hold()`). */
  release(): void;
  /** Makes `wait: true` calls wait again after a `release()`. */
  hold(): void;
  /** Resolves once `n` calls are waiting. */
  untilWaiting(n: number): Promise<void>;
  /** Pretends the host lost the provider's credentials (`unavailableReason`). */
  setUnavailable(reason: string | null): void;
}

/**
 * Builds a fresh `test` provider with `test.read` (L1, idempotent), `test.write` (L2), `test.deploy` (L3).
 * @param onAttempt called on every attempt (the crash fixture reports them to its parent process).
 */
export function testProvider(onAttempt?: (a: Attempt) => void): TestProvider {
  const attempts: Attempt[] = [];
  let waiters: (() => void)[] = [];
  let released = false;
  let unavailable: string | null = null;
  const watchers: { n: number; resolve: () => void }[] = [];
  const notify = () => {
    for (const w of [...watchers]) if (waiters.length >= w.n) (watchers.splice(watchers.indexOf(w), 1), w.resolve());
  };

  const action = (id: string, level: ActionLevel, idempotent: boolean): ActionDefinition<typeof Params, unknown> =>
    defineAction({
      id,
      level,
      description: `test action (L${level}${idempotent ? ', idempotent' : ''})`,
      params: Params,
      idempotent,
      resource: (p) => p.resource,
      summarize: (p) => `${id} on ${p.resource}`,
      async execute(p, ctx) {
        const seen: Attempt = { action: id, requestId: ctx.requestId, group: ctx.group, taskId: ctx.taskId };
        attempts.push(seen);
        onAttempt?.(seen);
        const n = attempts.filter((a) => a.requestId === ctx.requestId && a.group === ctx.group).length;
        if (p.hang) await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
        if (p.wait && !released) {
          await new Promise<void>((resolve) => {
            waiters.push(resolve);
            notify();
          });
        }
        if (n <= p.fail) throw new ProviderError('upstream is briefly unavailable', 503, 'unavailable');
        if (p.reject) {
          throw new ProviderError(`repository not found (token ${PROVIDER_SECRET})`, 404, 'not_found', {
            authorization: `Bearer ${PROVIDER_SECRET}`,
            note: `used ${PROVIDER_SECRET}`,
          });
        }
        return { action: id, resource: p.resource, attempt: n };
      },
    });

  return {
    provider: {
      name: 'test',
      actions: [action('test.read', 1, true), action('test.write', 2, false), action('test.deploy', 3, false)],
      unavailableReason: () => unavailable,
    },
    attempts,
    attemptsOf: (requestId) => attempts.filter((a) => a.requestId === requestId).length,
    waiting: () => waiters.length,
    release() {
      released = true;
      const all = waiters;
      waiters = [];
      for (const r of all) r();
    },
    hold() {
      released = false;
    },
    untilWaiting: (n) => new Promise<void>((resolve) => (waiters.length >= n ? resolve() : watchers.push({ n, resolve }))),
    setUnavailable(reason) {
      unavailable = reason;
    },
  };
}
