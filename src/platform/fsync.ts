/** Durability helpers for files the broker writes outside SQLite (keys, backups). */
import fs from 'node:fs';

/**
 * fsyncs a file or a directory (a directory after a rename or link in it, so the new entry
 * survives a power loss). Where directories cannot be opened or fsynced (Windows), that case is
 * skipped: the rename itself is still atomic.
 * @throws the fs error for a file that cannot be opened or fsynced.
 */
export function fsyncPath(target: string, kind: 'file' | 'dir'): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(target, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    if (kind === 'file') throw err;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
