/**
 * The schema index: every capability's tables, as drizzle-kit and drizzle see them.
 * Each capability keeps its tables next to its code and is re-exported here.
 */
export * from './meta.js';
export * from '../audit/schema.js';
export * from '../secrets/schema.js';
export * from '../kernel/schema.js';
export * from '../broker/grants/schema.js';
export * from '../broker/calls/schema.js';
export * from '../auth/schema.js';
export * from '../instances/schema.js';
