/**
 * The schema index: every capability's tables, as drizzle-kit sees them (`drizzle.config.ts`;
 * `npm run db:generate` writes the migrations in `drizzle/` from it). Each capability keeps its
 * tables next to its code and is re-exported here; the running broker never imports this file
 * (its stores use their own module's tables), so the platform depends on no capability.
 */
export * from './platform/db/meta.js';
export * from './platform/audit/schema.js';
export * from './modules/identity/schema.js';
export * from './modules/kernel/schema.js';
export * from './modules/grants/schema.js';
export * from './modules/grant-requests/schema.js';
export * from './modules/calls/schema.js';
export * from './modules/tokens/schema.js';
export * from './platform/lease/schema.js';
export * from './modules/runner/schema.js';
export * from './modules/switches/schema.js';
export * from './platform/outbox/schema.js';
export * from './modules/webhooks/schema.js';
export * from './modules/limits/schema.js';
