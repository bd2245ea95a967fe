/**
 * The file operations of the IPC transport, each safe in a directory the agent also writes to:
 * nothing here follows a symbolic link, reads a file that is not a regular file of its own, or
 * writes through a name the agent prepared. Node has no `openat`, so every open is checked
 * afterwards against the path it was meant to reach (`/proc/self/fd/<fd>` on Linux): a directory
 * swapped for a link between a check and an open is caught there.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ApiError, problemBody, type ErrorCode } from '../../platform/http/problem.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/** Why a file was refused: `reason` names the check, `code`/`detail` are its problem+json. */
export interface FileProblem {
  reason: 'symlink' | 'not_regular' | 'hard_link' | 'too_large' | 'bad_name' | 'outside_directory' | 'malformed_json' | 'invalid_file';
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
 * cannot tell (the check is then skipped; `O_NOFOLLOW` still refuses a final link).
 */
async function realPathOf(fd: number): Promise<string | null> {
  if (!HAS_PROC) return null;
  try {
    return await fs.promises.readlink(`/proc/self/fd/${fd}`);
  } catch {
    return null;
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
 * with one link (a hard link could name another group's file), at most `maxBytes` long, at the
 * path it was meant to be (`expectedPath`, real: no directory on the way was a link).
 * @returns the bytes, or the problem that makes the file rejected.
 * @throws fs errors other than the refusals (ENOENT when the file is gone).
 */
export async function readOwnFile(p: string, expectedPath: string, maxBytes: number): Promise<ReadFile | FileProblem> {
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
    const real = await realPathOf(fh.fd);
    if (real !== null && real !== expectedPath) return fileProblem('outside_directory', "The request file is not in the group's own IPC directory (a directory on the way is a link).");
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
 * Writes `data` to `<dir>/<name>` atomically without following links: a new temporary file
 * `.<name>.<random>.tmp` (`O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0600) checked to be in
 * `realDir`, written, fsynced, then renamed over `name` (a rename replaces a link planted under
 * that name instead of writing through it), and the directory fsynced.
 * write-file-atomic is not used here: it resolves the target's links (`realpath`) and copies the
 * old file's owner, which in a directory the agent writes is the very attack to refuse.
 * @throws Error when `dir` is not `realDir` (a directory on the way is a link), or the fs error.
 */
export async function writeAtomic(dir: string, realDir: string, name: string, data: string): Promise<void> {
  const temp = path.join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await fs.promises.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  let renamed = false;
  try {
    const real = await realPathOf(fh.fd);
    if (real !== null && path.dirname(real) !== realDir) throw new Error(`${dir} is not the directory ${realDir} (a link?); nothing written`);
    await fh.writeFile(data, 'utf8');
    await fh.sync();
    await fh.close();
    await fs.promises.rename(temp, path.join(dir, name));
    renamed = true;
  } finally {
    await fh.close().catch(() => {});
    if (!renamed) await fs.promises.unlink(temp).catch(() => {});
  }
  await fsyncDir(dir);
}

/** fsyncs a directory after a rename or link in it (skipped where directories cannot be fsynced). */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(dir, O_RDONLY | O_NOFOLLOW);
    await fh.sync();
  } catch {
    // not fatal: the rename itself is atomic
  } finally {
    await fh?.close();
  }
}

/**
 * Moves the entry `from` (a file, a link, a directory: whatever it is, itself, never what a link
 * names) into `rejectedDir` under `name`, or `<name>.<random>` when that is taken, and writes the
 * problem+json error file `<moved name>.error.json` beside it.
 * @param instance the name the agent gave (the problem's `instance`).
 * @returns the moved entry's name in `rejectedDir`.
 * @throws fs errors (ENOENT when `from` is gone).
 */
export async function moveToRejected(from: string, rejectedDir: string, realRejectedDir: string, name: string, problem: FileProblem, instance: string): Promise<string> {
  let target = name;
  while ((await lstatOrNull(path.join(rejectedDir, target))) !== null || (await lstatOrNull(path.join(rejectedDir, `${target}.error.json`))) !== null) {
    target = `${name}.${randomBytes(4).toString('hex')}`;
  }
  await fs.promises.rename(from, path.join(rejectedDir, target));
  const body = problemBody(new ApiError(problem.code, problem.detail, { reason: problem.reason, file: instance, rejected_as: target }), instance);
  await writeAtomic(rejectedDir, realRejectedDir, `${target}.error.json`, `${JSON.stringify(body, null, 2)}\n`);
  return target;
}
