import { defineConfig } from 'drizzle-kit';

/**
 * drizzle-kit configuration for the PostgreSQL engine: the `pg-core` mirror of every capability's
 * tables (`src/schema.pg.ts`) feeds one PostgreSQL migration history in `drizzle-pg/`
 * (`npm run db:generate:pg`). The SQLite history stays in `drizzle/` (`drizzle.config.ts`).
 */
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema.pg.ts',
  out: './drizzle-pg',
});
