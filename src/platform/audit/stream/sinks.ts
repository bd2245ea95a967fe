/**
 * The audit sinks: each takes a batch of rows (in seq order) and resolves only once its
 * destination acknowledged every one of them, so the stream (`stream.ts`) can then advance the
 * sink's cursor (at-least-once). Every row travels as its export line (`exportLine`: `{seq, ts,
 * actor, kind, subject, detail, prev_hash, hash}`, the stored `detail` bytes verbatim), so a
 * receiver de-duplicates by `seq` and recomputes each row's hash (`broker audit verify --file`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createStream, type RotatingFileStream } from 'rotating-file-stream';
import pRetry, { AbortError } from 'p-retry';
import syslog from 'syslog-client';
import type { StoredActivity } from '../chain.js';
import { exportLine } from '../export.js';
import type { FileSinkSpec, HttpSinkSpec, SyslogSinkSpec } from './config.js';

/** One destination of the stream. */
export interface AuditSink {
  readonly id: string;
  /**
   * Sends `rows` (seq order, at least one).
   * @returns (resolves) once the destination acknowledged all of them (see each sink).
   * @throws (rejects) with the transport's error when it did not; some rows may have arrived (they
   *   are sent again from the cursor).
   */
  deliver(rows: StoredActivity[], signal: AbortSignal): Promise<void>;
  /** Closes files and sockets. Idempotent. */
  close(): Promise<void>;
}

/**
 * fsyncs a file or directory without blocking the event loop (a separate descriptor: fsync flushes
 * the file's data whichever descriptor wrote it). A directory that cannot be fsynced is skipped.
 * @throws the fs error for a file that cannot be opened or fsynced.
 */
async function fsyncAsync(target: string, kind: 'file' | 'dir'): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(target, 'r');
    await handle.sync();
  } catch (err) {
    if (kind === 'file') throw err;
  } finally {
    await handle?.close();
  }
}

/**
 * A file sink: the batch is one write to the rotating stream (so a row never spans two files), then
 * the file written, and any file rotated during the write with its directory, are fsynced (off the
 * event loop) before the batch counts as delivered. The directory is made (0700) when missing; the
 * files are 0600. After a failed write (a full disk) the stream is reopened at the next batch.
 * Rotated files are named `<name>.<YYYYMMDDTHHMMSSZ>-<n>`; with `max_files`, the list of them is
 * kept in `.<name>.rotated` (hidden, so `<name>*` matches only lines).
 * @throws the fs error when the directory cannot be made.
 */
export function fileSink(spec: FileSinkSpec): AuditSink {
  const dir = path.dirname(spec.path);
  const base = path.basename(spec.path);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = (t: Date) => t.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  let rotated: string[] = [];
  let failure: Error | null = null;
  const open = (): RotatingFileStream => {
    const s = createStream((time, index) => (time ? `${base}.${stamp(new Date(time))}-${index ?? 1}` : base), {
      path: dir,
      mode: 0o600,
      ...(spec.size === undefined ? {} : { size: spec.size }),
      ...(spec.interval === undefined ? {} : { interval: spec.interval }),
      ...(spec.max_files === undefined ? {} : { maxFiles: spec.max_files, history: `.${base}.rotated` }),
    });
    s.on('error', (err) => (failure = err));
    s.on('rotated', (file) => rotated.push(file));
    return s;
  };
  let stream = open();
  let closed: Promise<void> | null = null;
  return {
    id: spec.id,
    async deliver(rows) {
      if (failure) {
        stream.destroy();
        failure = null;
        stream = open();
      }
      const text = rows.map((r) => `${exportLine(r)}\n`).join('');
      await new Promise<void>((resolve, reject) => stream.write(text, (err) => (err ? reject(err) : resolve())));
      await fsyncAsync(spec.path, 'file');
      if (rotated.length > 0) {
        for (const file of rotated) await fsyncAsync(file, 'file').catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err; // already deleted by `max_files`
        });
        await fsyncAsync(dir, 'dir');
        rotated = [];
      }
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        if (failure || stream.destroyed) return resolve();
        stream.end(() => resolve());
      });
      return closed;
    },
  };
}

/** What the syslog sink sends for a row: its export line, or a stub when that is too large for one UDP datagram. */
export function syslogLine(row: StoredActivity, maxMsgBytes: number | null): string {
  const line = exportLine(row);
  if (maxMsgBytes === null || Buffer.byteLength(line) <= maxMsgBytes) return line;
  return oversizedLine(row, Buffer.byteLength(row.detail));
}

/**
 * The line of a row too large for one UDP datagram: the export line without `detail`, plus
 * `detail_omitted: {bytes}` (the stored detail's size). `seq`, `hash` and `prev_hash` still link the
 * chain, but this row's hash cannot be recomputed from it: the receiver fetches the row with
 * `broker audit export --since <seq - 1>` (or streams over TCP, where rows are never cut).
 */
export function oversizedLine(row: StoredActivity, detailBytes: number): string {
  const { detail: _omitted, prevHash, ...rest } = row;
  return JSON.stringify({ ...rest, detail_omitted: { bytes: detailBytes }, prev_hash: prevHash, hash: row.hash });
}

/**
 * A syslog sink: one RFC 5424 message per row (`syslog-client`): PRI from `facility` and severity
 * informational, TIMESTAMP the row's `ts`, APP-NAME `app_name`, MSGID `audit`, no structured data,
 * MSG the row's line. TCP: a message counts as delivered once written to the socket (a write
 * error, or a closed connection, fails the batch and the next attempt reconnects). UDP: once the
 * datagram was sent; a datagram lost on the way is not noticed (UDP has no acknowledgement: use TCP
 * where no row may go missing). A message not taken within `timeout_ms` fails the batch. Over UDP a
 * row whose message exceeds `max_udp_bytes` is sent as {@link oversizedLine}.
 */
export function syslogSink(spec: SyslogSinkSpec, hostname: string): AuditSink {
  const udp = spec.transport === 'udp';
  const client = syslog.createClient(spec.host, {
    port: spec.port,
    transport: udp ? syslog.Transport.Udp : syslog.Transport.Tcp,
    rfc3164: false,
    facility: spec.facility,
    severity: syslog.Severity.Informational,
    appName: spec.app_name,
    syslogHostname: hostname,
  });
  let lastError: Error | null = null;
  // The client emits 'error' on transport failures; without a listener that would end the process.
  client.on('error', (err: Error) => (lastError = err));
  // Header: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - ` plus the final LF: at most ~200 bytes.
  const headerBytes = 8 + 30 + Buffer.byteLength(hostname) + spec.app_name.length + 12 + 6 + 4;
  const maxMsg = udp ? spec.max_udp_bytes - headerBytes : null;
  /**
   * One message: resolves when the client's callback reports it written (TCP) or sent (UDP);
   * rejects on its error, on `signal` (the stream stopping), or after `timeout_ms` (a receiver that
   * stopped reading: the connection is dropped, and the next message reconnects).
   */
  const send = (row: StoredActivity, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const settle = (err?: Error) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => settle(new Error('the audit stream is stopping'));
      const timer = setTimeout(() => {
        client.close();
        settle(new Error(`syslog ${spec.host}:${spec.port} took no message for ${spec.timeout_ms} ms`));
      }, spec.timeout_ms);
      signal.addEventListener('abort', onAbort);
      client.log(syslogLine(row, maxMsg), { msgid: 'audit', timestamp: new Date(row.ts) }, (err?: Error) => settle(err));
    });
  return {
    id: spec.id,
    async deliver(rows, signal) {
      for (const row of rows) {
        if (signal.aborted) throw new Error('the audit stream is stopping');
        lastError = null;
        await send(row, signal);
        if (lastError) throw lastError;
      }
    },
    async close() {
      client.close();
    },
  };
}

/** An HTTP status the sink retries: 408, 429 and 5xx. Others (a 4xx the receiver means) stop the batch's attempts at once. */
const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

/**
 * An HTTP sink: POSTs the batch's lines as one `application/jsonl` body (each line ending in LF),
 * with `Authorization: Bearer <token>` when configured. 2xx acknowledges the batch. A network
 * error, a timeout (`timeout_ms`), 408, 429 or 5xx is retried up to `retries` times with
 * exponential backoff (p-retry, 250 ms doubling to 30 s); any other status, or exhausted retries,
 * fails the batch (the stream backs off and reads again from the cursor).
 */
export function httpSink(spec: HttpSinkSpec): AuditSink {
  const headers: Record<string, string> = { 'content-type': 'application/jsonl' };
  if (spec.bearer !== null) headers.authorization = `Bearer ${spec.bearer}`;
  const where = `${new URL(spec.url).origin}${new URL(spec.url).pathname}`; // for messages: never the query, which may hold a key
  return {
    id: spec.id,
    async deliver(rows, signal) {
      const body = rows.map((r) => `${exportLine(r)}\n`).join('');
      await pRetry(
        async () => {
          const res = await fetch(spec.url, { method: 'POST', headers, body, signal: AbortSignal.any([signal, AbortSignal.timeout(spec.timeout_ms)]) });
          await res.body?.cancel();
          if (res.ok) return;
          const err = new Error(`${where} answered ${res.status}`);
          if (!retryable(res.status)) throw new AbortError(err);
          throw err;
        },
        { retries: spec.retries, minTimeout: 250, maxTimeout: 30_000, factor: 2, signal, shouldRetry: () => !signal.aborted },
      );
    },
    async close() {},
  };
}
