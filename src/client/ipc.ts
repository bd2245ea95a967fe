/**
 * The file transport for {@link BrokerClient}, for an agent container without a network: instead of
 * sending a signed request over HTTP, it writes it as a request file into the group's IPC
 * directory (`/workspace/ipc` in the container) and waits for the broker's answer file. The
 * formats and how they stand in for HTTP are `src/protocol/ipc.ts`; the signature is the one the
 * client made for HTTP, over the same method, path, query, fields and body.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { IPC_ORIGIN, requestFile, type IpcResponseFile } from '../protocol/ipc.js';

/** The base URL a {@link BrokerClient} over the file transport is given (no request leaves the host by it). */
export const IPC_BASE_URL = IPC_ORIGIN;

/** Options of {@link ipcFetch}. */
export interface IpcFetchOptions {
  /** The group's IPC directory: the one holding `requests/`, `responses/`, `rejected/`. */
  dir: string;
  /** How long to wait for the answer, in ms (default 60 000). */
  timeoutMs?: number;
  /** How often to look for the answer, in ms (default 25). */
  pollMs?: number;
}

/**
 * Thrown by the {@link ipcFetch} function when no answer came in time; {@link BrokerClient} wraps
 * it into its `BrokerUnreachableError` (code `IPC_TIMEOUT`). `withdrawn` tells whether the request
 * file was still unclaimed and was taken back (then it never ran), or the broker had claimed it (its
 * outcome is unknown: retry under the same Idempotency-Key, which replays a call that did run).
 */
export class IpcTimeoutError extends Error {
  override name = 'IpcTimeoutError';
  readonly code = 'IPC_TIMEOUT';
  constructor(
    readonly file: string,
    readonly withdrawn: boolean,
    timeoutMs: number,
  ) {
    super(
      withdrawn
        ? `no broker took ${file} within ${timeoutMs} ms; the request was withdrawn unread (is the broker serving this directory, BROKER_IPC_DIR?)`
        : `the broker claimed ${file} but wrote no answer within ${timeoutMs} ms; the outcome is unknown`,
    );
  }
}

/**
 * A `fetch` for {@link BrokerClient}'s `fetch` option that goes through the IPC directory: writes
 * the signed request as `requests/<id>.json` (a fresh UUID; written as `.<id>.json.tmp`, fsynced,
 * then renamed, so the broker never reads it half-written), and waits for `responses/<id>.json`
 * (read, then removed) or, for a file the broker refused, `rejected/<id>.json.error.json` (its
 * problem+json becomes the response). Give the client `baseUrl: IPC_BASE_URL`.
 * @throws IpcTimeoutError when neither appears within `timeoutMs`; Error when the request has a
 *   header the file format cannot carry, or the directory cannot be written.
 */
export function ipcFetch(opts: IpcFetchOptions): (url: string, init: RequestInit) => Promise<Response> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const pollMs = opts.pollMs ?? 25;
  return async (url, init) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => (headers[name] = value));
    const body = init.body === undefined || init.body === null ? undefined : typeof init.body === 'string' ? init.body : new Uint8Array(init.body as ArrayBuffer);
    const file = requestFile(init.method ?? 'GET', new URL(url), headers, body);
    const id = randomUUID();
    const name = `${id}.json`;
    const temp = path.join(opts.dir, 'requests', `.${name}.tmp`);
    const fh = await fs.promises.open(temp, 'wx', 0o600);
    try {
      await fh.writeFile(JSON.stringify(file));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(temp, path.join(opts.dir, 'requests', name));

    const answer = path.join(opts.dir, 'responses', name);
    const refusal = path.join(opts.dir, 'rejected', `${name}.error.json`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await readIfThere(answer);
      if (text !== null) {
        await fs.promises.unlink(answer).catch(() => {});
        return toResponse(JSON.parse(text) as IpcResponseFile);
      }
      const problem = await readIfThere(refusal);
      if (problem !== null) {
        const parsed = JSON.parse(problem) as { status?: number };
        return new Response(problem, { status: parsed.status ?? 400, headers: { 'content-type': 'application/problem+json' } });
      }
      if (Date.now() >= deadline) {
        const withdrawn = await fs.promises.unlink(path.join(opts.dir, 'requests', name)).then(
          () => true,
          () => false,
        );
        throw new IpcTimeoutError(path.join(opts.dir, 'requests', name), withdrawn, timeoutMs);
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  };
}

async function readIfThere(file: string): Promise<string | null> {
  try {
    return await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw err;
  }
}

/** The web Response of an answer file (a JSON body serialized again). */
function toResponse(file: IpcResponseFile): Response {
  const text = file.body === null || file.body === undefined ? null : typeof file.body === 'string' ? file.body : JSON.stringify(file.body);
  const headers = new Headers(file.headers);
  headers.delete('content-length');
  return new Response(file.status === 204 || file.status === 304 ? null : text, { status: file.status, headers });
}
