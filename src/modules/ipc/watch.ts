/**
 * Watches one directory for new names, to answer a request file without waiting for the next
 * sweep, with `chokidar` (inotify on Linux, FSEvents on macOS). Only a hint: the periodic sweep of
 * the IPC service reads the directory itself, so an event the watcher drops, coalesces or never
 * sees (a network file system, a directory replaced under it) delays a request by one sweep at
 * most. Links are not followed, and only the directory's own entries are watched (depth 0).
 */
import path from 'node:path';
import chokidar from 'chokidar';

/** A running directory watcher. */
export interface DirectoryWatcher {
  /** Stops watching; idempotent. */
  close(): Promise<void>;
}

/**
 * Starts watching `dir` (not recursively, links not followed).
 * @param onName called with an entry's name when one appears or changes.
 * @param onError called once when the watcher fails (e.g. the directory was removed); it is then
 *   closed, and the caller starts a new one on its next sweep.
 */
export function watchDirectory(dir: string, onName: (name: string | null) => void, onError: (err: Error) => void): DirectoryWatcher {
  let watcher: ReturnType<typeof chokidar.watch> | null = chokidar.watch(dir, { depth: 0, ignoreInitial: true, followSymlinks: false, persistent: false });
  const seen = (p: string) => {
    if (path.dirname(p) === dir) onName(path.basename(p));
  };
  watcher.on('add', seen);
  watcher.on('change', seen);
  watcher.on('error', (err) => {
    const w = watcher;
    watcher = null;
    void w?.close();
    onError(err instanceof Error ? err : new Error(String(err)));
  });
  return {
    async close() {
      const w = watcher;
      watcher = null;
      await w?.close();
    },
  };
}
