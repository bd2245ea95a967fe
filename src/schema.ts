/**
 * The schema index: every capability's tables, as drizzle-kit and drizzle see them.
 * Each capability keeps its tables next to its code and is re-exported here.
 */
export * from './platform/db/meta.js';
export * from './platform/audit/schema.js';
export * from './modules/identity/schema.js';
export * from './modules/kernel/schema.js';
export * from './modules/grants/schema.js';
export * from './modules/calls/schema.js';
export * from './modules/tokens/schema.js';
export * from './platform/lease/schema.js';
