/**
 * The provider only the bench registers: `bench.noop` (L1, idempotent) does nothing and answers
 * `{ok: true}`, so a call measures the broker (decision, claim, audit, group commit), not a remote
 * service.
 */
import { z } from 'zod';
import { defineAction, type Provider } from '../src/providers/contract.js';

const Params = z.strictObject({ resource: z.string().min(1).max(200).default('bench/noop') });

/** The bench provider. */
export function benchProvider(): Provider {
  return {
    name: 'bench',
    actions: [
      defineAction({
        id: 'bench.noop',
        level: 1,
        description: 'does nothing (bench only)',
        params: Params,
        idempotent: true,
        resource: (p) => p.resource,
        summarize: (p) => `noop on ${p.resource}`,
        execute: async () => ({ ok: true }),
      }),
      defineAction({
        id: 'bench.admin_reset',
        level: 2,
        description: 'never called (bench grants deny it)',
        params: Params,
        idempotent: false,
        resource: (p) => p.resource,
        summarize: (p) => `admin reset on ${p.resource}`,
        execute: async () => ({ ok: true }),
      }),
    ],
    unavailableReason: () => null,
  };
}
