/**
 * The file transport of `broker serve` (`BROKER_IPC_DIR`): for each agent group it watches
 * `<root>/<group>/requests/` and sweeps it every `BROKER_IPC_SWEEP_MS`, claims each finished
 * request file (a hard link into `processing/`, then the name in `requests/` removed), reads it
 * without following links, hands it to the app's own `fetch` (the same instance HTTP serves:
 * verification, the decision path, idempotency, the inflight lock, backpressure and the audit are
 * literally the same), writes the answer atomically to `responses/<request id>.json`, and only
 * then removes the claimed file. A malformed or unsafe file is moved to `rejected/` with an error
 * file beside it. After a crash a claimed file is still in `processing/` and is handled again at
 * start-up: its Idempotency-Key replays the first answer, or `unknown_outcome` for a call that was
 * running (crash recovery runs before the transport starts).
 */
import fs from 'node:fs';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/log.js';
import { ensureLayout, GroupDir, type IpcSubdir } from './layout.js';
import { DirHandle, DirRefusedError, fileProblem, isCode, lstatOrNull, moveToRejected, readOwnFile, writeAtomic, type FileProblem } from './files.js';
import { admit, toRequest, toResponseFile } from './admit.js';
import { watchDirectory, type DirectoryWatcher } from './watch.js';
import { isTemporaryName, parseRequestFile, requestIdOf } from '../../protocol/ipc.js';

/** Request files of one group handled at once; more wait in `requests/` for a free slot. */
export const MAX_ACTIVE_PER_GROUP = 64;

/** What the transport runs on. `fetch` must be the serving app's own (its call lanes are per app). */
export interface IpcDeps {
  config: { ipcDir: string; ipcSweepMs: number; bodyLimitBytes: number };
  /** The agent groups (`policies/groups.json`): each gets a directory. */
  groups: Iterable<string>;
  clock: Clock;
  logger: Logger;
  fetch: (req: Request) => Response | Promise<Response>;
}

/**
 * The largest request file, in bytes: twice the body limit (a body in base64 is 4/3 of its size)
 * plus 16 KiB for the header fields. The body inside is held to the body limit by the app (413).
 */
export function maxRequestFileBytes(bodyLimitBytes: number): number {
  return 2 * bodyLimitBytes + 16 * 1024;
}

interface GroupState {
  dir: GroupDir;
  /** Names of files being handled (in `requests/` or `processing/`), so no two handle one file. */
  active: Set<string>;
  watcher: DirectoryWatcher | null;
  /** The inode of `requests/` the watcher watches. */
  watchedIno: number | null;
  /** A file waited for a free slot: sweep again when one frees. */
  backlog: boolean;
  /** The last reason the group was not served (logged once). */
  refused: string | null;
}

/** The transport; {@link startIpc} makes and starts one. */
export class IpcService {
  private readonly groups = new Map<string, GroupState>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly log: Logger;
  private readonly maxBytes: number;
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly deps: IpcDeps) {
    this.log = deps.logger.child({ component: 'ipc' });
    this.maxBytes = maxRequestFileBytes(deps.config.bodyLimitBytes);
  }

  /**
   * Makes the root (0700) and every group's directory, handles what is already there (claimed
   * files first), and starts the watchers and the periodic sweep.
   * @throws the fs error when the root cannot be made or resolved.
   */
  async start(): Promise<void> {
    const root = this.deps.config.ipcDir;
    await fs.promises.mkdir(root, { recursive: true, mode: 0o700 });
    const realRoot = await fs.promises.realpath(root);
    for (const group of this.deps.groups) {
      this.groups.set(group, { dir: new GroupDir(group, root, realRoot), active: new Set(), watcher: null, watchedIno: null, backlog: false, refused: null });
    }
    await this.sweep();
    this.timer = setInterval(() => void this.sweep(), this.deps.config.ipcSweepMs);
    this.timer.unref();
    this.log.info({ ipc_dir: root, groups: [...this.groups.keys()], sweep_ms: this.deps.config.ipcSweepMs }, 'file transport watching');
  }

  /**
   * One sweep of every group: checks and repairs the layout, restarts a watcher whose directory
   * changed, and claims every file of `processing/` and `requests/` not being handled (temporary
   * names are skipped). Resolves once every file found is claimed or waiting for a slot, not
   * once answered ({@link idle}). A sweep asked for while one runs joins it.
   */
  sweep(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.sweeping ??= (async () => {
      try {
        for (const state of this.groups.values()) await this.sweepGroup(state);
      } finally {
        this.sweeping = null;
      }
    })();
    return this.sweeping;
  }

  /** Resolves once no request file is being handled (tests; shutdown). */
  async idle(): Promise<void> {
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  /**
   * Stops the watchers and the sweep, then waits up to `timeoutMs` for the files being handled.
   * A file still unanswered stays in `processing/` and is handled again at the next start.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const state of this.groups.values()) await state.watcher?.close();
    await this.sweeping;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  private async sweepGroup(state: GroupState): Promise<void> {
    const g = state.dir;
    try {
      const layout = await ensureLayout(g, this.deps.clock.now());
      if (!layout.ok) {
        if (state.refused !== layout.detail) this.log.error({ group: g.group, detail: layout.detail }, 'IPC directory not served');
        state.refused = layout.detail;
        return;
      }
      state.refused = null;
      if (layout.repaired.length > 0) this.log.warn({ group: g.group, repaired: layout.repaired }, 'IPC directory repaired: entries that were not directories of its own moved to rejected/');
      if (state.watchedIno !== layout.inodes.requests) this.rewatch(state, layout.inodes.requests);
      state.backlog = false;
      for (const sub of ['processing', 'requests'] as const) {
        const dir = await g.open(sub);
        let entries: string[];
        try {
          entries = await fs.promises.readdir(dir.entry('.'));
        } finally {
          await dir.close();
        }
        for (const name of entries) if (!isTemporaryName(name)) this.handle(state, sub, name);
      }
    } catch (err) {
      this.log.error({ group: g.group, err: (err as Error).message }, 'IPC sweep failed; trying again at the next one');
    }
  }

  private rewatch(state: GroupState, ino: number): void {
    void state.watcher?.close();
    state.watcher = null;
    state.watchedIno = null;
    try {
      state.watcher = watchDirectory(
        state.dir.path('requests'),
        (name) => {
          if (this.stopped) return;
          if (name === null) void this.sweep();
          else if (!isTemporaryName(name)) this.handle(state, 'requests', name);
        },
        (err) => {
          state.watchedIno = null;
          this.log.warn({ group: state.dir.group, err: err.message }, 'IPC watcher stopped; the sweep starts a new one');
        },
      );
      state.watchedIno = ino;
    } catch (err) {
      this.log.warn({ group: state.dir.group, err: (err as Error).message }, 'IPC watcher could not start; relying on the sweep');
    }
  }

  /** Starts handling `<sub>/<name>` unless it is being handled or the group has no free slot. */
  private handle(state: GroupState, sub: 'requests' | 'processing', name: string): void {
    if (this.stopped || state.active.has(name)) return;
    if (state.active.size >= MAX_ACTIVE_PER_GROUP) {
      state.backlog = true;
      return;
    }
    state.active.add(name);
    const task = this.process(state, sub, name)
      .catch((err: unknown) => this.log.error({ group: state.dir.group, file: `${sub}/${name}`, err: (err as Error).message }, 'IPC request not answered; it is handled again at the next sweep'))
      .finally(() => {
        state.active.delete(name);
        this.tasks.delete(task);
        if (state.backlog && !this.stopped) void this.sweep();
      });
    this.tasks.add(task);
  }

  /**
   * Claims, reads, answers and clears one request file. Every name is taken through directories
   * opened for this file ({@link DirHandle}), so a sub-directory the agent swaps for a link
   * meanwhile is never followed (the next sweep moves the link to `rejected/`).
   */
  private async process(state: GroupState, sub: 'requests' | 'processing', name: string): Promise<void> {
    const g = state.dir;
    const opened: DirHandle[] = [];
    const open = async (s: IpcSubdir) => {
      const h = await g.open(s);
      opened.push(h);
      return h;
    };
    try {
      const source = await open(sub);
      const processing = sub === 'processing' ? source : await open('processing');
      const rejected = await open('rejected');
      const responses = await open('responses');
      await this.answerFile(g, name, sub, source, processing, rejected, responses);
    } catch (err) {
      if (err instanceof DirRefusedError) this.log.warn({ group: g.group, err: err.message }, 'IPC directory changed under a request; the next sweep repairs it');
      else throw err;
    } finally {
      for (const h of opened) await h.close();
    }
  }

  private async answerFile(g: GroupDir, name: string, sub: 'requests' | 'processing', source: DirHandle, processing: DirHandle, rejected: DirHandle, responses: DirHandle): Promise<void> {
    const reject = async (from: string, problem: FileProblem) => {
      const moved = await moveToRejected(from, rejected, name, problem, name);
      this.log.warn({ group: g.group, file: name, rejected_as: moved, reason: problem.reason, detail: problem.detail }, 'IPC request file rejected');
    };
    const id = requestIdOf(name);
    const from = source.entry(name);
    const st = await lstatOrNull(from);
    if (st === null) return; // gone (claimed by an earlier event, or withdrawn)
    if (id === null) return reject(from, fileProblem('bad_name', 'A request file is named <request id>.json, the id 1–128 of [A-Za-z0-9._:-] not starting with "."; write under a temporary name (".x.tmp") and rename.'));
    if (st.isSymbolicLink()) return reject(from, fileProblem('symlink', 'The request file is a symbolic link; write a regular file.'));
    if (!st.isFile()) return reject(from, fileProblem('not_regular', 'The request is not a regular file.'));
    const claimed = processing.entry(name);
    if (sub === 'requests') {
      if (st.nlink !== 1) return reject(from, fileProblem('hard_link', 'The request file has other hard links; write a new file.'));
      try {
        await fs.promises.link(from, claimed);
      } catch (err) {
        if (isCode(err, 'EEXIST', 'ENOENT')) return; // a file of that name is still in processing/ (handled first), or this one is gone
        throw err;
      }
      await fs.promises.unlink(from);
      await processing.sync();
    } else {
      // A crash between the claim's link and unlink leaves the same file under requests/ too.
      const requests = await DirHandle.open(g.path('requests'), g.realPath('requests'));
      try {
        const twin = await lstatOrNull(requests.entry(name));
        if (twin !== null && twin.ino === st.ino && twin.dev === st.dev) await fs.promises.unlink(requests.entry(name));
      } finally {
        await requests.close();
      }
    }
    const read = await readOwnFile(claimed, this.maxBytes).catch((err: unknown) => {
      if (isCode(err, 'ENOENT')) return null; // withdrawn from processing/ by its writer
      throw err;
    });
    if (read === null) return;
    if (!('bytes' in read)) return reject(claimed, read);
    const parsed = parseRequestFile(read.bytes);
    if ('reason' in parsed) return reject(claimed, fileProblem(parsed.reason, parsed.detail));
    let request: Request;
    try {
      request = toRequest(parsed, id);
    } catch (err) {
      // A file the parser let through that is still no HTTP request: refused, never retried forever.
      return reject(claimed, fileProblem('invalid_file', `The request file does not make an HTTP request: ${(err as Error).message}`));
    }
    const response = admit(parsed, g.group) ?? (await this.deps.fetch(request));
    const answer = await toResponseFile(id, response);
    await writeAtomic(responses, `${id}.json`, `${JSON.stringify(answer)}\n`);
    await fs.promises.unlink(claimed);
    this.log.debug({ group: g.group, request_id: id, status: answer.status }, 'IPC request answered');
  }
}

/**
 * Starts the file transport over `deps.config.ipcDir` for every group (see {@link IpcService}).
 * @returns the running service; `stop(timeoutMs)` ends it.
 * @throws the fs error when the root cannot be made.
 */
export async function startIpc(deps: IpcDeps): Promise<IpcService> {
  const service = new IpcService(deps);
  await service.start();
  return service;
}
