/**
 * The HTTP audit sink through real processes: `broker serve` streams to a real HTTP receiver that
 * is down (503) at first. Rows are written by real `broker secrets rotate` processes while the sink
 * fails (the broker keeps serving, and its lag gauge grows), the broker is stopped with SIGTERM and
 * started again, more rows are written, the receiver comes back, and what it got, de-duplicated by
 * `seq`, must verify as one chain from seq 1 to the head (`verifyExport`, the project's chain code).
 * `broker audit sinks` reports the sink's cursor and lag in between and at the end.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';
import { runCli, startServeProcess, type ServeProcess } from '../helpers/process.js';
import { maxSeq, startHttpReceiver, until, verifyReceived, type HttpReceiver } from '../helpers/audit-receivers.js';

/** The newest row's seq, read from the database file (WAL: readable while the broker writes). */
function headSeq(dataDir: string): number {
  const db = new Database(path.join(dataDir, 'broker.db'), { readonly: true });
  try {
    return (db.prepare('SELECT max(seq) AS seq FROM gov_activities').get() as { seq: number }).seq;
  } finally {
    db.close();
  }
}

/** Appends one audit row through a real CLI process (`key.rotated`). */
async function addRow(env: Record<string, string>): Promise<void> {
  const res = await runCli(['secrets', 'rotate', '--group', 'security'], env);
  expect(res.code, res.stderr).toBe(0);
}

/** `broker_audit_sink_lag_rows{sink="siem"}` as the broker's /metrics shows it, or null when absent. */
async function lagOf(url: string): Promise<number | null> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^broker_audit_sink_lag_rows\{sink="siem"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : null;
}

/** What `broker audit sinks` prints. */
async function sinksReport(env: Record<string, string>): Promise<{ head: number; sinks: unknown[] }> {
  const res = await runCli(['audit', 'sinks'], env);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as { head: number; sinks: unknown[] };
}

async function stopServe(serve: ServeProcess): Promise<void> {
  serve.child.kill('SIGTERM');
  expect(await serve.exited).toBe(0);
}

describe('the HTTP sink survives a receiver outage and a broker restart', () => {
  const dataDir = path.join(tempDir(), 'data');
  const policiesDir = tempDir();
  let receiver: HttpReceiver;
  let serve: ServeProcess | null = null;
  afterAll(async () => {
    if (serve && serve.child.exitCode === null) serve.child.kill('SIGKILL');
    await receiver?.close();
  });

  it('every row arrives, as application/jsonl with the bearer token, and the chain verifies from what arrived', { timeout: 180_000 }, async () => {
    receiver = await startHttpReceiver(true);
    for (const f of ['groups.json', 'approvers.json']) fs.copyFileSync(path.join(REPO_ROOT, 'policies', f), path.join(policiesDir, f));
    fs.writeFileSync(
      path.join(policiesDir, 'audit-sinks.json'),
      JSON.stringify({ poll_ms: 50, max_backoff_ms: 300, sinks: [{ id: 'siem', type: 'http', url: receiver.url, bearer_token_env: 'TEST_SIEM_TOKEN', batch_rows: 2, retries: 1, timeout_ms: 5000 }] }),
    );
    const env = { BROKER_DATA_DIR: dataDir, BROKER_POLICIES_DIR: policiesDir, TEST_SIEM_TOKEN: 'siem-test-token' };

    serve = await startServeProcess(env);
    for (let i = 0; i < 3; i++) await addRow(env);
    await until(() => receiver.refused >= 3, 'the sink to try the receiver while it is down');
    // The failing sink blocks nothing: the broker answers, and reports the rows it still owes.
    expect((await fetch(`${serve.url}/health`)).status).toBe(200);
    await until(async () => ((await lagOf(serve!.url)) ?? 0) >= 3, 'the lag gauge to count the rows not delivered');
    await stopServe(serve);

    const owed = await sinksReport(env);
    expect(owed.sinks).toEqual([{ id: 'siem', type: 'http', target: receiver.url, cursor: 0, lag: owed.head }]);
    await addRow(env); // written while no broker serves
    serve = await startServeProcess(env);
    await addRow(env);
    receiver.down = false;
    await until(() => maxSeq(receiver.deliveries.flatMap((d) => d.lines)) === headSeq(dataDir), 'the receiver to get every row');
    await until(async () => (await lagOf(serve!.url)) === 0, 'the lag gauge to reach 0');
    await stopServe(serve);
    serve = null;

    const head = headSeq(dataDir);
    expect(await sinksReport(env)).toEqual({ head, sinks: [{ id: 'siem', type: 'http', target: receiver.url, cursor: head, lag: 0 }] });
    const { verdict } = await verifyReceived(receiver.deliveries.flatMap((d) => d.lines));
    expect(verdict).toMatchObject({ ok: true, rows: head, start: { seq: 1 }, head: { seq: head } });
    for (const d of receiver.deliveries) expect(d).toMatchObject({ contentType: 'application/jsonl', authorization: 'Bearer siem-test-token' });
    expect(receiver.deliveries.every((d) => d.lines.length <= 2)).toBe(true);
  });
});
