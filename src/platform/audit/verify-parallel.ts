/**
 * `broker audit verify` over several cores. Each row's hash depends only on the row and the
 * previous row's hash, which the row itself stores (`prev_hash`), so runs of rows can be checked
 * apart: worker threads (`verify-worker.ts`) each check a run of seqs with their own
 * {@link ChainChecker}, and this thread takes the runs in seq order ({@link ChainChecker.absorb}),
 * checking where each run joins the previous one. The verdict, the rows counted and the checker's
 * start and head are exactly those of {@link verifyChain}: the same first broken seq and reason.
 *
 * Runs are ranges of seq values, read by each worker in its own read transaction; rows are never
 * updated or deleted (triggers) and the range ends at the highest seq read at the start, so rows
 * appended meanwhile are left out, as they are from the sequential read's snapshot. A trail whose
 * seqs are not exactly `1..count` is broken somewhere: it is checked sequentially, which names
 * where.
 */
import fs from 'node:fs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Db } from '../db/open.js';
import { ChainChecker, verifyChain, type ChainVerdict, type CheckedRun, type SignedPoint } from './chain.js';

/** How {@link verifyChainParallel} splits the work. */
export interface ParallelVerifyOptions {
  /** Worker threads (default: the cores available, at most 4). Below 2, the check is sequential. */
  workers?: number;
  /** Rows per run handed to a worker (default 50 000). */
  chunkRows?: number;
  /** Below this many rows the check is sequential (default 200 000: threads cost ~50 ms to start). */
  minRows?: number;
}

/** Starts a verify worker; from the TypeScript sources (tests), through tsx. */
function startWorker(workerData: unknown): Worker {
  const file = new URL(`./verify-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url);
  if (file.pathname.endsWith('.js')) return new Worker(file, { workerData });
  const boot = `import('tsx/esm/api').then((api) => api.tsImport(${JSON.stringify(file.href)}, ${JSON.stringify(file.href)}))`;
  return new Worker(boot, { eval: true, workerData });
}

/**
 * {@link verifyChain} with the rows checked by worker threads; see the module note.
 * @param checker as for {@link verifyChain}: read its head and start afterwards, or give it an
 *   anchor and checkpoints.
 * @throws Error when a worker fails (the database cannot be opened, a worker crashes).
 */
export async function verifyChainParallel(db: Db, checker = new ChainChecker(), opts: ParallelVerifyOptions = {}): Promise<ChainVerdict> {
  const workers = opts.workers ?? Math.min(4, os.availableParallelism());
  const chunk = Math.max(1, opts.chunkRows ?? 50_000);
  const { lo, hi, n } = db.sqlite.prepare('SELECT min(seq) AS lo, max(seq) AS hi, count(*) AS n FROM gov_activities').get() as { lo: number | null; hi: number | null; n: number };
  const onDisk = fs.existsSync(db.path);
  if (workers < 2 || !onDisk || lo === null || hi === null || n < (opts.minRows ?? 200_000) || lo !== 1 || hi !== n) return verifyChain(db, checker);

  const { anchor, checkpoints } = checker.settings();
  const ranges: { from: number; to: number }[] = [];
  for (let from = lo; from <= hi; from += chunk) ranges.push({ from, to: Math.min(hi, from + chunk - 1) });
  const pool = Array.from({ length: Math.min(workers, ranges.length) }, () => startWorker({ path: db.path, anchor, checkpoints: checkpoints.map((c): SignedPoint => ({ seq: c.seq, hash: c.hash, ts: c.ts })) }));
  const done = new Map<number, CheckedRun>();
  let next = 0;
  let absorbed = 0;
  try {
    const verdict = await new Promise<ChainVerdict | null>((resolve, reject) => {
      const give = (w: Worker) => {
        if (next < ranges.length) w.postMessage({ id: next, ...ranges[next++]! });
      };
      for (const w of pool) {
        w.on('error', reject);
        w.on('exit', (code) => {
          if (code !== 0) reject(new Error(`an audit verify worker exited with ${code}`));
        });
        w.on('message', (m: { id: number; run: CheckedRun }) => {
          done.set(m.id, m.run);
          // Take the finished runs in seq order; stop at the first that breaks the chain.
          for (let run = done.get(absorbed); run !== undefined; run = done.get(absorbed)) {
            done.delete(absorbed);
            absorbed += 1;
            const broken = checker.absorb(run);
            if (broken) return resolve({ ok: false, rows: checker.rows, brokenSeq: broken.seq, reason: broken.reason });
          }
          if (absorbed === ranges.length) return resolve(null);
          give(w);
        });
        give(w);
      }
    });
    if (verdict) return verdict;
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  const unmet = checker.finish();
  if (unmet) return { ok: false, rows: checker.rows, brokenSeq: unmet.seq, reason: unmet.reason };
  return { ok: true, rows: checker.rows };
}
