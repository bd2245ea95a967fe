/**
 * Helpers for the file-transport tests: a real broker (real port, real SQLite file) with the
 * transport over the app it serves and a real temp IPC root, signed request files made by the
 * agents' own client, and waits for answer files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BrokerClient, IPC_BASE_URL, ipcFetch, type CallOptions } from '../../src/client/index.js';
import { startIpc, type IpcService } from '../../src/modules/ipc/index.js';
import { requestFile, type IpcRequestFile, type IpcResponseFile } from '../../src/protocol/ipc.js';
import { startBroker, tempDir, type BrokerOptions, type TestBroker } from '../helpers/harness.js';

/** A broker with its file transport. */
export interface IpcBroker {
  broker: TestBroker;
  ipc: IpcService;
  /** The IPC root (`BROKER_IPC_DIR`). */
  root: string;
  /** `<root>/<group>`, or a path in it. */
  dir(group: string, ...parts: string[]): string;
  /** A client of `group` that talks through its IPC directory (the real `ipcFetch`). */
  client(group: string): BrokerClient;
  stop(): Promise<void>;
}

/** Starts a broker (as {@link startBroker}) and the file transport over the app it serves. */
export async function startIpcBroker(opts: BrokerOptions & { sweepMs?: number } = {}): Promise<IpcBroker> {
  const broker = await startBroker(opts);
  const root = tempDir('broker-ipc-');
  const ipc = await startIpc({
    config: { ipcDir: root, ipcSweepMs: opts.sweepMs ?? 200, bodyLimitBytes: broker.deps.config.bodyLimitBytes },
    groups: broker.deps.groups.keys(),
    clock: broker.deps.clock,
    logger: broker.deps.logger,
    fetch: (req) => broker.server!.app.fetch(req),
  });
  const dir = (group: string, ...parts: string[]) => path.join(root, group, ...parts);
  return {
    broker,
    ipc,
    root,
    dir,
    client(group) {
      const key = broker.deps.keys.current(group);
      return new BrokerClient({ baseUrl: IPC_BASE_URL, credential: { keyid: key.keyid, secret: key.secret }, now: () => broker.clock.now(), fetch: ipcFetch({ dir: dir(group), timeoutMs: 20_000, pollMs: 10 }) });
    },
    async stop() {
      await ipc.stop(1000);
      await broker.stop();
    },
  };
}

/**
 * The request file the agents' client writes for a request of `group` (signed with its current
 * key at the broker's clock), without writing it.
 */
export async function signedFile(b: IpcBroker, group: string, method: string, p: string, options: CallOptions = {}): Promise<IpcRequestFile> {
  const key = b.broker.deps.keys.current(group);
  let file: IpcRequestFile | undefined;
  const capture = new BrokerClient({
    baseUrl: IPC_BASE_URL,
    credential: { keyid: key.keyid, secret: key.secret },
    now: () => b.broker.clock.now(),
    fetch: async (url, init) => {
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => (headers[k] = v));
      file = requestFile(init.method!, new URL(url), headers, init.body as string | undefined);
      return new Response('{}');
    },
  });
  await capture.request(method, p, options);
  return file!;
}

/** Writes `content` as `requests/<name>` the way agents must: a temporary name, then a rename. */
export function drop(b: IpcBroker, group: string, name: string, content: IpcRequestFile | string | Buffer): void {
  const temp = b.dir(group, 'requests', `.${name}.tmp`);
  fs.writeFileSync(temp, typeof content === 'string' || Buffer.isBuffer(content) ? content : JSON.stringify(content));
  fs.renameSync(temp, b.dir(group, 'requests', name));
}

/** Resolves once `file` exists (polls every 10 ms; the test's timeout bounds the wait). */
export async function until(file: string): Promise<void> {
  while (!fs.existsSync(file)) await new Promise((r) => setTimeout(r, 10));
}

/** Waits for `responses/<id>.json` of `group` and parses it. */
export async function answerOf(b: IpcBroker, group: string, id: string): Promise<IpcResponseFile> {
  const file = b.dir(group, 'responses', `${id}.json`);
  await until(file);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as IpcResponseFile;
}

/** Waits for `rejected/<name>.error.json` of `group` and parses it. */
export async function rejectionOf(b: IpcBroker, group: string, name: string): Promise<Record<string, any>> {
  const file = b.dir(group, 'rejected', `${name}.error.json`);
  await until(file);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
}

/** The names in `<group>/<sub>`, sorted, without the temporary ones (dotfiles) unless `all`. */
export function names(b: IpcBroker, group: string, sub: string, all = false): string[] {
  return fs.readdirSync(b.dir(group, sub)).filter((n) => all || !n.startsWith('.')).sort();
}
