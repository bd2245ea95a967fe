/**
 * The file operations of the IPC transport, each safe in a directory the agent also writes to:
 * nothing here follows a symbolic link, reads a file that is not a regular file of its own, or
 * writes through a name the agent prepared. Node has no `openat`; on Linux the same effect comes
 * from opening each directory once (`O_DIRECTORY | O_NOFOLLOW`, its real path checked) and naming
 * files through it as `/proc/self/fd/<fd>/<name>` ({@link DirHandle}), so a directory the agent
 * swaps for a link after it was opened is never followed.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ApiError, problemBody, type ErrorCode } from '../../platform/http/problem.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = fs.constants;

/** Why a file was refused: `reason` names the check, `code`/`detail` are its problem+json. */
export interface FileProblem {
  reason: 'symlink' | 'not_regular' | 'hard_link' | 'too_large' | 'bad_name' | 'malformed_json' | 'invalid_file';
  code: ErrorCode;
  detail: string;
}

/** A {@link FileProblem}. */
export function fileProblem(reason: FileProblem['reason'], detail: string): FileProblem {
  const code: ErrorCode = reason === 'too_large' ? 'payload_too_large' : reason === 'malformed_json' ? 'malformed_json' : reason === 'invalid_file' ? 'validation_failed' : 'bad_request';
  return { reason, code, detail };
}

/** True when `err` is a Node fs error with `code`. */
export function isCode(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as { code?: string }).code ?? '');
}

/** `lstat`, or null when nothing is there. @throws other fs errors. */
export async function lstatOrNull(p: string): Promise<fs.Stats | null> {
  try {
    return await fs.promises.lstat(p);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null;
    throw err;
  }
}

const HAS_PROC = fs.existsSync('/proc/self/fd');

/**
 * The path an open descriptor really reaches (Linux `/proc/self/fd`), or null where the system
 * cannot tell (the checks that need it are then skipped).
 */
async function realPathOf(fd: number): Promise<string | null> {
  if (!HAS_PROC) return null;
  try {
    return await fs.promises.readlink(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

/** Thrown by {@link DirHandle.open} when the directory is a link, not a directory, or elsewhere than expected. */
export class DirRefusedError extends Error {
  override name = 'DirRefusedError';
}

/**
 * An open directory, and names in it that keep meaning that directory: on Linux
 * `/proc/self/fd/<fd>/<name>`, which resolves through the open descriptor (as `openat` would), so
 * renaming the directory or putting a link in its place after it was opened changes nothing for
 * the operations made through the handle. Elsewhere the plain path (checked only when opened).
 */
export class DirHandle {
  private constructor(
    private readonly fh: fs.promises.FileHandle,
    readonly path: string,
  ) {}

  /**
   * Opens `p` with `O_DIRECTORY | O_NOFOLLOW` and checks that it is `realPath`.
   * @throws DirRefusedError for a link, a non-directory or another directory; fs errors (ENOENT).
   */
  static async open(p: string, realPath: string): Promise<DirHandle> {
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    } catch (err) {
      if (isCode(err, 'ELOOP', 'ENOTDIR', 'EMLINK')) throw new DirRefusedError(`${p} is not a directory of its own (a link?)`);
      throw err;
    }
    const real = await realPathOf(fh.fd);
    if (real !== null && real !== realPath) {
      await fh.close();
      throw new DirRefusedError(`${p} is ${real}, not ${realPath}`);
    }
    return new DirHandle(fh, p);
  }

  /** A name in this directory that resolves through the open descriptor (see the class). */
  entry(name: string): string {
    return HAS_PROC ? `/proc/self/fd/${this.fh.fd}/${name}` : path.join(this.path, name);
  }

  /** fsyncs the directory (after a rename or link in it); errors are ignored (the rename is atomic anyway). */
  async sync(): Promise<void> {
    await this.fh.sync().catch(() => {});
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

/** What {@link readOwnFile} read: the bytes, and the file's identity (device, inode). */
export interface ReadFile {
  bytes: Buffer;
  dev: number;
  ino: number;
}

/**
 * Reads a request file the broker claimed: opens it with `O_NOFOLLOW | O_NONBLOCK` (a link is
 * refused, a FIFO does not block), then checks on the open descriptor that it is a regular file
 * with one link (a hard link could name another group's file) and at most `maxBytes` long.
 * @param p the file, through a {@link DirHandle}.
 * @returns the bytes, or the problem that makes the file rejected.
 * @throws fs errors other than the refusals (ENOENT when the file is gone).
 */
export async function readOwnFile(p: string, maxBytes: number): Promise<ReadFile | FileProblem> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    if (isCode(err, 'ELOOP', 'EMLINK')) return fileProblem('symlink', 'The request file is a symbolic link; write a regular file.');
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return fileProblem('not_regular', 'The request is not a regular file.');
    if (st.nlink !== 1) return fileProblem('hard_link', 'The request file has other hard links; write a new file.');
    if (st.size > maxBytes) return fileProblem('too_large', `The request file is larger than ${maxBytes} bytes.`);
    const bytes = Buffer.alloc(maxBytes + 1);
    let length = 0;
    while (length < bytes.length) {
      const { bytesRead } = await fh.read(bytes, length, bytes.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) return fileProblem('too_large', `The request file is larger than ${maxBytes} bytes.`);
    return { bytes: bytes.subarray(0, length), dev: st.dev, ino: st.ino };
  } finally {
    await fh.close();
  }
}

/**
 * Writes `data` to `name` in `dir` atomically without following links: a new temporary file
 * `.<name>.<random>.tmp` (`O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0600), written, fsynced, then
 * renamed over `name` (a rename replaces a link planted under that name instead of writing
 * through it), and the directory fsynced.
 * write-file-atomic is not used here: it resolves the target's links (`realpath`) and copies the
 * old file's owner, which in a directory the agent writes is the very attack to refuse.
 * @throws the fs error; the temporary file is then removed.
 */
export async function writeAtomic(dir: DirHandle, name: string, data: string): Promise<void> {
  const temp = dir.entry(`.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await fs.promises.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  let renamed = false;
  try {
    await fh.writeFile(data, 'utf8');
    await fh.sync();
    await fh.close();
    await fs.promises.rename(temp, dir.entry(name));
    renamed = true;
  } finally {
    await fh.close().catch(() => {});
    if (!renamed) await fs.promises.unlink(temp).catch(() => {});
  }
  await dir.sync();
}

/**
 * Moves the entry `from` (a file, a link, a directory: whatever it is, itself, never what a link
 * names) into `rejected` under `name`, or `<name>.<random>` when that is taken, and writes the
 * problem+json error file `<moved name>.error.json` beside it.
 * @param from the entry, through a {@link DirHandle} (or a path in a directory the agent cannot replace).
 * @param instance the name the agent gave (the problem's `instance`).
 * @returns the moved entry's name in `rejected/`.
 * @throws fs errors (ENOENT when `from` is gone).
 */
export async function moveToRejected(from: string, rejected: DirHandle, name: string, problem: FileProblem, instance: string): Promise<string> {
  let target = name;
  while ((await lstatOrNull(rejected.entry(target))) !== null || (await lstatOrNull(rejected.entry(`${target}.error.json`))) !== null) {
    target = `${name}.${randomBytes(4).toString('hex')}`;
  }
  await fs.promises.rename(from, rejected.entry(target));
  const body = problemBody(new ApiError(problem.code, problem.detail, { reason: problem.reason, file: instance, rejected_as: target }), instance);
  await writeAtomic(rejected, `${target}.error.json`, `${JSON.stringify(body, null, 2)}\n`);
  return target;
}
