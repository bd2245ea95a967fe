/**
 * The PostgreSQL schema index: the `pg-core` mirror of every table in `schema.ts` (same table,
 * column, index and constraint names), for drizzle-kit (`drizzle.pg.config.ts`, migrations in
 * `drizzle-pg/`) and `openPgDb`. Unix-ms times are `bigint` read as JS numbers; JSON columns stay
 * `text` so their bytes (the audit detail, replayed responses) are kept exactly.
 */
export * from './platform/db/meta.pg.js';
export * from './platform/audit/schema.pg.js';
export * from './modules/identity/schema.pg.js';
export * from './modules/kernel/schema.pg.js';
export * from './modules/grants/schema.pg.js';
export * from './modules/grant-requests/schema.pg.js';
export * from './modules/calls/schema.pg.js';
export * from './modules/tokens/schema.pg.js';
export * from './platform/lease/schema.pg.js';
export * from './modules/runner/schema.pg.js';
export * from './modules/switches/schema.pg.js';
export * from './platform/outbox/schema.pg.js';
export * from './modules/webhooks/schema.pg.js';
export * from './modules/limits/schema.pg.js';
