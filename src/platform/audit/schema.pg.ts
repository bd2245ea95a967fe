import { bigint, index, pgTable, text } from 'drizzle-orm/pg-core';

/**
 * PostgreSQL mirror of `gov_activities` (`schema.ts`): the append-only, hash-chained audit trail.
 * `detail` stays `text` (not `jsonb`, which would reorder keys and drop whitespace) so the stored
 * bytes are the RFC 8785 canonical text the chain hash covers. UPDATE, DELETE and TRUNCATE are
 * refused, and a row must link to the row before it, by the triggers at the end of the baseline
 * migration (`drizzle-pg/`). Appends are serialised across replicas by `appendActivitiesPg`.
 */
export const govActivities = pgTable(
  'gov_activities',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey(),
    /** RFC 3339 timestamp with milliseconds, UTC (text, exactly as hashed). */
    ts: text('ts').notNull(),
    actor: text('actor').notNull(),
    kind: text('kind').notNull(),
    subject: text('subject').notNull(),
    /** JSON object as its RFC 8785 canonical text, already redacted. */
    detail: text('detail').notNull(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [index('gov_activities_subject_idx').on(t.subject, t.seq), index('gov_activities_kind_idx').on(t.kind, t.seq)],
);
