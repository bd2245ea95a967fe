/**
 * The SQLite call store's group commit on a real database file: claims, outcomes and refusals
 * queued in one event-loop turn commit in one transaction, and a write that fails (a duplicate
 * claim, an outcome for a call that is not running) rejects alone while the rest of its batch
 * commits with their audit rows, the chain intact.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { openDb } from '../../src/platform/db/open.js';
import { DuplicateClaim, SqliteCallStore, type AuditWrite, type NewCall } from '../../src/modules/calls/store.js';
import { tempDir } from '../helpers/harness.js';

const NOW = Date.UTC(2026, 0, 1);

function claimOf(requestId: string): { call: NewCall; audit: AuditWrite } {
  return {
    call: { group: 'g1', requestId, fingerprint: 'f', action: 'test.read', level: 1, resource: 'r', summary: 's', taskId: null, grantId: 'grt_1', receipt: '{}', createdAt: NOW, instanceId: null },
    audit: { input: { actor: 'g1', kind: 'call.claimed', subject: `call:g1:${requestId}`, detail: { n: requestId } }, nowMs: NOW },
  };
}

const end = { status: 'succeeded' as const, httpStatus: 200, response: '{}', attempts: 1, finishedAt: NOW, durationMs: 1 };
const endAudit = (requestId: string): AuditWrite => ({ input: { actor: 'g1', kind: 'call.succeeded', subject: `call:g1:${requestId}`, detail: {} }, nowMs: NOW });

function subjects(db: ReturnType<typeof openDb>): string[] {
  return (db.sqlite.prepare('SELECT kind, subject FROM gov_activities ORDER BY seq').all() as { kind: string; subject: string }[]).map((r) => `${r.kind} ${r.subject}`);
}

describe('group commit (SQLite call store)', () => {
  it('commits a batch with no failure as one transaction, every write with its audit row', async () => {
    const db = openDb({ path: path.join(tempDir(), 'broker.db') });
    const store = new SqliteCallStore(db);
    await Promise.all(['a', 'b', 'c'].map((id) => { const c = claimOf(id); return store.claim(c.call, c.audit); }));
    expect(store.stats).toMatchObject({ batches: 1, writes: 3 });
    expect(subjects(db)).toEqual(['call.claimed call:g1:a', 'call.claimed call:g1:b', 'call.claimed call:g1:c']);
    expect(verifyChain(db)).toMatchObject({ ok: true, rows: 3 });
    db.sqlite.close();
  });

  it('rejects only the failing writes of a batch; the others commit with their audit rows, chained', async () => {
    const db = openDb({ path: path.join(tempDir(), 'broker.db') });
    const store = new SqliteCallStore(db);
    const first = claimOf('dup');
    await store.claim(first.call, first.audit);

    // One batch: a claim, a duplicate claim, an outcome of a call that is not there, a refusal, another claim.
    const ok1 = claimOf('x');
    const dup = claimOf('dup');
    const ok2 = claimOf('y');
    const results = await Promise.allSettled([
      store.claim(ok1.call, ok1.audit),
      store.claim(dup.call, dup.audit),
      store.end('g1', 'nobody', end, endAudit('nobody')),
      store.recordRefusal({ input: { actor: 'g1', kind: 'call.denied', subject: 'call:g1:z', detail: { code: 'action_denied' } }, nowMs: NOW }),
      store.claim(ok2.call, ok2.audit),
      store.end('g1', 'dup', end, endAudit('dup')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(DuplicateClaim);
    expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/not running/);
    expect(store.stats).toMatchObject({ batches: 2, writes: 7 });

    expect(subjects(db)).toEqual([
      'call.claimed call:g1:dup',
      'call.claimed call:g1:x',
      'call.denied call:g1:z',
      'call.claimed call:g1:y',
      'call.succeeded call:g1:dup',
    ]);
    expect(verifyChain(db)).toMatchObject({ ok: true, rows: 5 });
    const rows = db.sqlite.prepare('SELECT request_id AS id, status FROM ext_calls ORDER BY request_id').all();
    expect(rows).toEqual([
      { id: 'dup', status: 'succeeded' },
      { id: 'x', status: 'running' },
      { id: 'y', status: 'running' },
    ]);
    db.sqlite.close();
  });
});
