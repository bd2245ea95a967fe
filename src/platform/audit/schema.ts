import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/**
 * `gov_activities`: the append-only, hash-chained audit trail. UPDATE and DELETE are refused by
 * triggers (see the migration `drizzle/*_audit_triggers.sql`).
 * `hash` = sha256hex(prev_hash + RFC 8785 canonical JSON of {seq, ts, actor, kind, subject, detail}).
 */
export const govActivities = sqliteTable(
  'gov_activities',
  {
    seq: integer('seq').primaryKey(),
    /** RFC 3339 timestamp with milliseconds, UTC. */
    ts: text('ts').notNull(),
    /** Who acted: a group (`developer`), `operator:<subject>`, `approver:<id>` or `system`. */
    actor: text('actor').notNull(),
    /** What happened, dotted: `task.transition`, `call.denied`, `grant.created`, … */
    kind: text('kind').notNull(),
    /** What it happened to: a task id, grant id, `call:<group>:<request id>`, … */
    subject: text('subject').notNull(),
    /** JSON object, already redacted. */
    detail: text('detail').notNull(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [index('gov_activities_subject_idx').on(t.subject, t.seq), index('gov_activities_kind_idx').on(t.kind, t.seq)],
);
