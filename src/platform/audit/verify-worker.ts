/**
 * A worker thread of {@link verifyChainParallel} (`verify-parallel.ts`): opens the database
 * read-only (`workerData.path`) and checks the runs of seqs it is sent, each with a fresh
 * {@link ChainChecker} holding the same anchor and checkpoints, answering each with the run's
 * {@link CheckedRun}. Messages in: `{id, from, to}` (seqs, inclusive) or `'close'`; out:
 * `{id, run}`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { ChainChecker, type ChainPoint, type SignedPoint, type StoredActivity } from './chain.js';

const { path, anchor, checkpoints } = workerData as { path: string; anchor?: ChainPoint; checkpoints: SignedPoint[] };
const db = new Database(path, { readonly: true, fileMustExist: true });
const rows = db.prepare('SELECT seq, ts, actor, kind, subject, detail, prev_hash AS prevHash, hash FROM gov_activities WHERE seq BETWEEN ? AND ? ORDER BY seq');

parentPort!.on('message', (m: { id: number; from: number; to: number } | 'close') => {
  if (m === 'close') {
    db.close();
    parentPort!.close();
    return;
  }
  const checker = new ChainChecker(anchor, checkpoints);
  let broken: { seq: number; reason: string } | null = null;
  for (const r of rows.iterate(m.from, m.to) as IterableIterator<StoredActivity>) {
    const reason = checker.push(r);
    if (reason) {
      broken = { seq: r.seq, reason };
      break;
    }
  }
  parentPort!.postMessage({ id: m.id, run: checker.run(broken) });
});
