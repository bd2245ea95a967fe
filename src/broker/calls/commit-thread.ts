/**
 * The writer thread of the group commit (see `commit.ts`): its own SQLite connection, opened like
 * the main one, applies each batch of call writes in one `BEGIN IMMEDIATE … COMMIT`, one savepoint
 * per write, and answers once the COMMIT (and its fsync) returned.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { immediate, openDb } from '../../db/open.js';
import { applyWrite, type BatchReply, type CallWrite, type WriteResult, type WriterOptions } from './commit.js';
import { CallStore } from './store.js';

const options = workerData as WriterOptions;
const db = openDb({
  path: options.path,
  readonly: options.readonly,
  synchronous: options.synchronous,
  busyTimeoutMs: options.busyTimeoutMs,
  migrate: false,
});
const store = new CallStore(db);
const savepoint = {
  begin: db.sqlite.prepare('SAVEPOINT call_write'),
  release: db.sqlite.prepare('RELEASE call_write'),
  rollback: db.sqlite.prepare('ROLLBACK TO call_write'),
};

function apply(writes: CallWrite[]): WriteResult[] {
  const results: WriteResult[] = [];
  immediate(db, () => {
    for (const w of writes) {
      savepoint.begin.run();
      try {
        applyWrite(db, store, w);
        savepoint.release.run();
        results.push(null);
      } catch (err) {
        savepoint.rollback.run();
        savepoint.release.run();
        const e = err as { message?: unknown; code?: unknown };
        results.push({ message: String(e?.message ?? err), ...(typeof e?.code === 'string' ? { code: e.code } : {}) });
      }
    }
  });
  return results;
}

parentPort!.on('message', ({ id, writes }: { id: number; writes: CallWrite[] }) => {
  const started = performance.now();
  let reply: BatchReply;
  try {
    reply = { id, results: apply(writes), seconds: (performance.now() - started) / 1000 };
  } catch (err) {
    reply = { id, failure: err instanceof Error ? err.message : String(err) };
  }
  parentPort!.postMessage(reply);
});
