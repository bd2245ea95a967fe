/**
 * A group's IPC directory, `<BROKER_IPC_DIR>/<group>/` (mounted as `/workspace/ipc` in the
 * group's container), and its four sub-directories, each created 0700:
 * `requests/` (the agent renames finished request files here), `processing/` (files the broker
 * claimed), `responses/` (the answers), `rejected/` (refused files and their error files).
 * The agent can write every one of them, so before each sweep the broker checks that each is still
 * a real directory, not a link: an entry that is not one is moved into `rejected/` (with an error
 * file) and the directory made again.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DirHandle, fileProblem, lstatOrNull, moveToRejected } from './files.js';

/** The sub-directories of a group's IPC directory. */
export const IPC_SUBDIRS = ['requests', 'processing', 'responses', 'rejected'] as const;
/** One of {@link IPC_SUBDIRS}. */
export type IpcSubdir = (typeof IPC_SUBDIRS)[number];

/** One group's IPC directory: paths as configured, and as they really are (links of the root resolved). */
export class GroupDir {
  /** `<root>/<group>`. */
  readonly dir: string;
  /** The same, with the root's own links resolved (what `/proc/self/fd` reports under it). */
  readonly realDir: string;

  constructor(
    readonly group: string,
    root: string,
    realRoot: string,
  ) {
    this.dir = path.join(root, group);
    this.realDir = path.join(realRoot, group);
  }

  /** `<root>/<group>/<sub>`. */
  path(sub: IpcSubdir, name?: string): string {
    return name === undefined ? path.join(this.dir, sub) : path.join(this.dir, sub, name);
  }

  /** The real path of `<sub>/<name>` (or of `<sub>`). */
  realPath(sub: IpcSubdir, name?: string): string {
    return name === undefined ? path.join(this.realDir, sub) : path.join(this.realDir, sub, name);
  }

  /**
   * Opens `<sub>` as a {@link DirHandle}: the files named through it stay in this directory even
   * if the agent replaces `<sub>` afterwards.
   * @throws DirRefusedError when `<sub>` is a link or not this group's directory; fs errors.
   */
  open(sub: IpcSubdir): Promise<DirHandle> {
    return DirHandle.open(this.path(sub), this.realPath(sub));
  }
}

/** What {@link ensureLayout} found: the inode of each sub-directory (a watcher restarts when one changes), or why the group is not served. */
export type Layout = { ok: true; inodes: Record<IpcSubdir, number>; repaired: string[] } | { ok: false; detail: string };

const isRealDir = (st: fs.Stats | null): boolean => st !== null && st.isDirectory() && !st.isSymbolicLink();

/**
 * Makes `<root>/<group>/` and its sub-directories (0700) where missing, and repairs what the agent
 * replaced: `rejected/` that is not a directory is renamed aside to `rejected.<ms>.invalid` (it
 * cannot hold its own error file); any other sub-directory that is not one (a link to another
 * group's directory, a file) is moved into `rejected/` with an error file, and made again.
 * @returns the sub-directories' inodes and what was repaired, or `ok: false` when the group's own
 *   directory is a link or not a directory (the operator's to fix: the broker does not serve it).
 * @throws fs errors (e.g. EACCES on the root).
 */
export async function ensureLayout(g: GroupDir, clockMs: number): Promise<Layout> {
  const top = await lstatOrNull(g.dir);
  if (top === null) {
    await fs.promises.mkdir(g.dir, { mode: 0o700 });
    await fs.promises.chmod(g.dir, 0o700);
  } else if (!isRealDir(top)) return { ok: false, detail: `${g.dir} is not a directory (or is a link); the broker does not serve it` };
  const repaired: string[] = [];
  const rejected = g.path('rejected');
  const rst = await lstatOrNull(rejected);
  if (rst !== null && !isRealDir(rst)) {
    const aside = `rejected.${clockMs}.invalid`;
    await fs.promises.rename(rejected, path.join(g.dir, aside));
    repaired.push(`rejected (renamed to ${aside})`);
  }
  const inodes = {} as Record<IpcSubdir, number>;
  for (const sub of ['rejected', 'requests', 'processing', 'responses'] as const) {
    const p = g.path(sub);
    let st = await lstatOrNull(p);
    if (st !== null && !isRealDir(st)) {
      // (`rejected/` itself was set aside above, so it is absent or real here)
      const kind = st.isSymbolicLink() ? 'symlink' : 'not_regular';
      const problem = fileProblem(kind, `${sub}/ must be a directory of this group's own; it was ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}, so the broker moved it here and made a new one.`);
      const rejectedDir = await g.open('rejected');
      try {
        await moveToRejected(p, rejectedDir, sub, problem, sub);
      } finally {
        await rejectedDir.close();
      }
      repaired.push(sub);
      st = null;
    }
    if (st === null) {
      await fs.promises.mkdir(p, { mode: 0o700 });
      await fs.promises.chmod(p, 0o700);
      st = await fs.promises.lstat(p);
    }
    inodes[sub] = st.ino;
  }
  return { ok: true, inodes, repaired };
}
