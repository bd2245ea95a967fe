import { defineConfig } from 'drizzle-kit';

/** drizzle-kit configuration: every capability's schema feeds one SQLite migration history in `drizzle/`. */
export default defineConfig({
  dialect: 'sqlite',
  schema: './src/schema.ts',
  out: './drizzle',
});
