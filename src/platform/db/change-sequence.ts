/**
 * Change sequences: how the decision path's in-memory read model (the group keys in
 * `identity/keys.ts`, the grant index in `grants/source.ts`) stays exact while other connections,
 * processes (the CLI) or replicas write the tables it mirrors.
 *
 * A change sequence is a number the database advances in the same transaction as every write to
 * the tables it covers, maintained by triggers in the schema (so in every engine and for every
 * writer): `group_keys_version.version` for `group_keys`, `MAX(grant_changes.seq)` for `grants`
 * and `grant_approvals`. A reader keeps the head it last applied and, before it answers from
 * memory, reads the head again (one primary-key or `MAX` read, about 1 µs on SQLite); when the head
 * moved it refreshes what the sequence covers first. So a write committed before a request
 * arrives is seen by that request, whichever process made it.
 *
 * Inside a transaction of the reader's own connection the head and the tables may show writes
 * that can still roll back: the reader then reads the tables directly and changes nothing in
 * memory.
 *
 * Another engine implements {@link ChangeSequence} over the same tables (the PostgreSQL schema
 * keeps both sequences, the grant log in commit order), or from notifications (`LISTEN/NOTIFY`)
 * that carry the new head. Either way {@link ChangeSequence.head} must reflect every commit made
 * before it is called, and throw when it cannot know (a lost notification channel), so the reader
 * fails closed instead of answering from stale memory.
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from './open.js';

/** The head of one change sequence, as a reader polls it. */
export interface ChangeSequence {
  /**
   * The head now: it differs from every earlier answer once a commit changed what the sequence
   * covers (0 while nothing was ever recorded).
   * @throws when the head cannot be known (the database is unreachable); the reader must not
   *   answer from memory then.
   */
  head(): number;
  /** True while the reader's connection is inside a transaction (see the module note). */
  inTransaction(): boolean;
}

/**
 * A {@link ChangeSequence} on SQLite: one prepared statement that returns the head as its only
 * column (NULL is read as 0), run on each {@link ChangeSequence.head}.
 * @param sql e.g. `SELECT MAX(seq) FROM grant_changes`.
 */
export function sqliteChangeSequence(db: Db, sql: string): ChangeSequence {
  const stmt = db.sqlite.prepare(sql).pluck() as Statement<[], number | null>;
  return {
    head: () => stmt.get() ?? 0,
    inTransaction: () => db.sqlite.inTransaction,
  };
}
