/**
 * Watches one directory for new names, to answer a request file without waiting for the next
 * sweep. Only a hint: the periodic sweep of the IPC service reads the directory itself, so an event
 * the watcher drops, coalesces or never sees (a network file system, a directory replaced under
 * it) delays a request by one sweep at most.
 *
 * TEMPORARY: this uses node's `fs.watch` (inotify on Linux) because the maintained watcher the
 * design names, `chokidar`, is not installed in this checkout. Once it is a dependency, replace the
 * body of {@link watchDirectory} with
 * `const w = chokidar.watch(dir, { depth: 0, ignoreInitial: true, followSymlinks: false });
 *  w.on('add', (p) => onName(path.basename(p))); w.on('error', onError); return { close: () => w.close() };`
 * and keep the interface.
 */
import fs from 'node:fs';

/** A running directory watcher. */
export interface DirectoryWatcher {
  /** Stops watching; idempotent. */
  close(): Promise<void>;
}

/**
 * Starts watching `dir` (not recursively, links not followed).
 * @param onName called with an entry's name when one appears or changes (or with null when the
 *   system could not say which: read the directory).
 * @param onError called once when the watcher fails (e.g. the directory was removed); it is then
 *   closed, and the caller starts a new one on its next sweep.
 */
export function watchDirectory(dir: string, onName: (name: string | null) => void, onError: (err: Error) => void): DirectoryWatcher {
  let watcher: fs.FSWatcher | null = fs.watch(dir, { persistent: false, recursive: false, encoding: 'utf8' }, (_event, name) => onName(name ?? null));
  watcher.on('error', (err) => {
    watcher?.close();
    watcher = null;
    onError(err);
  });
  return {
    async close() {
      watcher?.close();
      watcher = null;
    },
  };
}
