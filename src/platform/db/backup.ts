/**
 * Online backups of the broker's database (`broker backup`): a consistent copy taken while the
 * broker runs, checked before it is kept, and audited. The copy holds what the database holds,
 * group secrets encrypted under `master.key` included, but neither `master.key` nor `token.key`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { verifyChain } from '../audit/chain.js';
import { chainHead } from '../audit/export.js';
import { appendActivity } from '../audit/trail.js';
import type { Clock } from '../clock.js';
import { fsyncPath } from '../fsync.js';
import { DB_FILE_MODE, immediate, openDb, pendingMigrations, type Db } from './open.js';

/** What {@link backupDatabase} wrote and checked. `bytes` is the copy's size; `audit_head` its newest audit row. */
export interface BackupReport {
  path: string;
  bytes: number;
  audit_rows: number;
  audit_head: { seq: number; hash: string } | null;
}

/**
 * Writes a consistent copy of `db` to `out` (mode 0600), with `VACUUM INTO` (SQLite §vacuum:
 * one read transaction, so writers in this or other processes are not blocked and the copy is
 * a single instant), into a temporary file beside `out` that is checked (`PRAGMA
 * integrity_check`, no pending migration, the audit hash chain verified from genesis), fsynced,
 * and then hard-linked to `out` (a link, unlike a rename, fails if `out` appeared meanwhile); then
 * the directory is fsynced. Finally `backup.created` is audited in `db` (subject the absolute
 * path; detail `{path, bytes, audit_rows, audit_head}`), so the trail records every copy of
 * itself that was taken.
 * @returns the report, as audited.
 * @throws Error when `out` exists (never overwritten), its directory is missing, or the copy
 *   fails a check (the temporary file is removed in every case); ApiError 503
 *   `audit_unavailable` when the audit row cannot be written (the copy stays at `out`).
 */
export function backupDatabase(db: Db, out: string, clock: Clock, actor: string): BackupReport {
  const target = path.resolve(out);
  if (fs.existsSync(target)) throw new Error(`${target} exists; a backup never overwrites a file`);
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  let report: BackupReport;
  try {
    // Created empty with mode 0600 first (VACUUM INTO fills an empty file), so the copy is never
    // readable by others, not even while it is written.
    fs.closeSync(fs.openSync(tmp, 'wx', DB_FILE_MODE));
    db.sqlite.prepare('VACUUM INTO ?').run(tmp);
    report = { path: target, ...checkCopy(tmp) };
    fsyncPath(tmp, 'file');
    fs.linkSync(tmp, target);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fsyncPath(path.dirname(target), 'dir');
  immediate(db, () => appendActivity(db, { actor, kind: 'backup.created', subject: target, detail: { ...report } }, clock.now()));
  return report;
}

/**
 * Checks a copy without migrating or writing it: integrity, migrations, the audit chain.
 * @throws Error naming the first failed check.
 */
function checkCopy(file: string): Omit<BackupReport, 'path'> {
  const copy: Db = openDb({ path: file, readonly: true, migrate: false });
  try {
    const integrity = copy.sqlite.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') throw new Error(`the copy fails PRAGMA integrity_check: ${String(integrity)}`);
    const pending = pendingMigrations(copy);
    if (pending !== 0) throw new Error(`the copy lacks ${pending} migration(s)`);
    const chain = verifyChain(copy);
    if (!chain.ok) throw new Error(`the copy's audit chain is broken at seq ${chain.brokenSeq}: ${chain.reason}`);
    const head = chainHead(copy);
    return { bytes: fs.statSync(file).size, audit_rows: chain.rows, audit_head: head && { seq: head.seq, hash: head.hash } };
  } finally {
    copy.sqlite.close();
  }
}
