/**
 * The webhook deliveries store and the fan-out on both engines: the fan-out maps each audit kind
 * to its event (one delivery per subscribed endpoint and event, replays add nothing), counts a
 * burst of refused calls once per group and window however the rows fall into batches; three
 * replicas claiming due deliveries never claim the same one; a late attempt result changes
 * nothing; three replicas' expiry checks announce a grant once; an operator's retry is audited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityInput } from '../../../src/platform/audit/trail.js';
import { ManualClock } from '../../../src/platform/clock.js';
import { appendAlone, appendAlonePg } from '../../../src/platform/db/seam.js';
import { runOutboxBatch } from '../../../src/platform/outbox/consumer.js';
import { sqliteOutboxStore, type OutboxStore } from '../../../src/platform/outbox/store.js';
import { pgOutboxStore } from '../../../src/platform/outbox/store.pg.js';
import { fanOut, WEBHOOK_CONSUMER } from '../../../src/modules/webhooks/fanout.js';
import { EVENT_TYPES, type WebhookPolicy } from '../../../src/modules/webhooks/policy.js';
import { retryDelivery } from '../../../src/modules/webhooks/service.js';
import { sqliteWebhookStore, type WebhookStore } from '../../../src/modules/webhooks/store.js';
import { pgWebhookStore } from '../../../src/modules/webhooks/store.pg.js';
import { ENGINES, pgOf, sqliteOf, type Engine, type Handle, type TestDatabase } from './engines.js';

const T0 = Date.UTC(2026, 4, 1, 12);
const clock = new ManualClock(T0);
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

const policy: WebhookPolicy = {
  endpoints: [
    { id: 'all', url: 'https://a.example/', events: [...EVENT_TYPES], secret: SECRET },
    { id: 'approvers', url: 'https://b.example/', events: ['grant.awaiting_approval'], secret: SECRET },
  ],
  refusedBurst: { threshold: 3, windowS: 60 },
  expiringWithinS: 3600,
  delivery: { maxAttempts: 3, initialDelayMs: 10, maxDelayMs: 100, timeoutMs: 1000, pollMs: 50 },
};

const stores = (h: Handle): { outbox: OutboxStore; webhooks: WebhookStore } =>
  h.engine === 'sqlite'
    ? { outbox: sqliteOutboxStore(sqliteOf(h), clock), webhooks: sqliteWebhookStore(sqliteOf(h), clock) }
    : { outbox: pgOutboxStore(pgOf(h), clock), webhooks: pgWebhookStore(pgOf(h), clock) };
const append = (h: Handle, rows: ActivityInput[]) => (h.engine === 'sqlite' ? appendAlone(sqliteOf(h), clock, rows) : appendAlonePg(pgOf(h), clock, rows));
const refusal = (group: string, n: number): ActivityInput => ({ actor: group, kind: 'call.denied', subject: `call:${group}:r${n}`, detail: { code: 'no_capability' } });

describe.each(ENGINES.map((e) => [e.name, e] as const))('webhook deliveries on %s', (_name, engine: Engine) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await engine.open('webhooks');
  });
  afterAll(async () => {
    await t?.close();
  });

  it('fans each audit kind out to its event, once, and a refusal burst once per group and window', async () => {
    const [a] = t.replicas;
    const { outbox, webhooks } = stores(a);
    expect(await outbox.start(WEBHOOK_CONSUMER, 'head')).toBe(0);
    await append(a, [
      { actor: 'operator:o', kind: 'grant.created', subject: 'grt_1', detail: { status: 'pending_approval', group: 'main' } },
      { actor: 'operator:o', kind: 'grant.created', subject: 'grt_2', detail: { status: 'active', group: 'developer', token: '[REDACTED]' } },
      { actor: 'system', kind: 'grant.activated', subject: 'grt_1', detail: {} },
      { actor: 'approver:x', kind: 'grant.rejected', subject: 'grt_3', detail: {} },
      { actor: 'operator:o', kind: 'grant.revoked', subject: 'grt_2', detail: {} },
      { actor: 'developer', kind: 'grant_request.created', subject: 'grq_1', detail: {} },
      { actor: 'main', kind: 'task.override', subject: 'task1', detail: { gate: 'Security' } },
      { actor: 'main', kind: 'task.transition', subject: 'task1', detail: {} },
      refusal('developer', 1),
      refusal('developer', 2),
      refusal('main', 1),
    ]);
    const handle = fanOut({ store: webhooks, policy, clock });
    // Batches of 2 rows: the third refusal of `developer` comes in a later batch than the first two.
    while ((await runOutboxBatch({ store: outbox, consumer: WEBHOOK_CONSUMER, batchSize: 2, handle })) > 0);
    await append(a, [refusal('developer', 3), refusal('developer', 4), refusal('main', 2)]);
    clock.advance(60_000); // the next window: three more refusals make a second burst
    await append(a, [refusal('developer', 5), refusal('developer', 6), refusal('developer', 7)]);
    clock.set(T0);
    while ((await runOutboxBatch({ store: outbox, consumer: WEBHOOK_CONSUMER, batchSize: 2, handle })) > 0);
    const { rows } = await webhooks.list({ limit: 100 });
    const byEndpoint = (id: string) => rows.filter((r) => r.endpointId === id).map((r) => [r.eventId, r.eventType]);
    expect(byEndpoint('all')).toEqual([
      ['evt_1', 'grant.awaiting_approval'],
      ['evt_2', 'grant.activated'],
      ['evt_3', 'grant.activated'],
      ['evt_4', 'grant.rejected'],
      ['evt_5', 'grant.revoked'],
      ['evt_6', 'grant_request.created'],
      ['evt_7', 'gate.overridden'],
      ['evt_12', 'calls.refused_burst'],
      ['evt_17', 'calls.refused_burst'],
    ]);
    expect(byEndpoint('approvers')).toEqual([['evt_1', 'grant.awaiting_approval']]);
    // The safety valves notify too: a soft quota passed, a provider's circuit opening and closing.
    await append(a, [
      { actor: 'system', kind: 'quota.soft_exceeded', subject: 'limit:default-l2:developer', detail: { rule: 'default-l2', group: 'developer', daily_soft: 300 } },
      { actor: 'system', kind: 'provider.circuit_opened', subject: 'provider:github', detail: { consecutive_failures: 5 } },
      { actor: 'system', kind: 'provider.circuit_closed', subject: 'provider:github', detail: {} },
    ]);
    while ((await runOutboxBatch({ store: outbox, consumer: WEBHOOK_CONSUMER, batchSize: 2, handle })) > 0);
    const valves = (await webhooks.list({ limit: 100 })).rows.filter((r) => r.endpointId === 'all' && r.seq > 17).map((r) => r.eventType);
    expect(valves).toEqual(['quota.soft_exceeded', 'provider.circuit_opened', 'provider.circuit_closed']);
    const first = rows[0]!;
    expect(first).toMatchObject({ status: 'pending', attempts: 0, seq: 1 });
    expect(JSON.parse(first.payload)).toMatchObject({ type: 'grant.awaiting_approval', timestamp: new Date(T0).toISOString(), data: { subject: 'grt_1', actor: 'operator:o', audit: { seq: 1, kind: 'grant.created' }, detail: { status: 'pending_approval' } } });
    // A replayed batch (the cursor moved back by hand) adds nothing.
    const before = await t.count('webhook_deliveries');
    const rewind = `UPDATE outbox_cursors SET seq = 0 WHERE consumer = '${WEBHOOK_CONSUMER}'`;
    if (a.engine === 'sqlite') sqliteOf(a).sqlite.prepare(rewind).run();
    else await pgOf(a).pool.query(rewind);
    while ((await runOutboxBatch({ store: outbox, consumer: WEBHOOK_CONSUMER, batchSize: 5, handle })) > 0);
    expect(await t.count('webhook_deliveries')).toBe(before);
    expect(await webhooks.counts()).toEqual({ pending: before, delivered: 0, failed: 0 });
  });

  it('lets three replicas claim due deliveries without claiming one twice, and ignores a late result', async () => {
    const all = t.replicas.map((h) => stores(h).webhooks);
    const total = await t.count('webhook_deliveries');
    const claimed = (await Promise.all(all.map((s) => s.claimDue(T0, 4, 30_000)))).flat().concat(...(await Promise.all(all.map((s) => s.claimDue(T0, 50, 30_000)))));
    expect(claimed.length).toBe(total);
    expect(new Set(claimed.map((r) => r.id)).size).toBe(total);
    expect(await all[0]!.claimDue(T0, 50, 30_000)).toEqual([]); // all leased
    expect((await all[0]!.claimDue(T0 + 30_000, 50, 30_000)).length).toBe(total); // the leases ran out
    const row = claimed[0]!;
    const patch = { status: 'pending', attempts: 1, nextAttemptAt: T0 + 10, lastAttemptAt: T0, lastStatus: 503, lastError: 'HTTP 503', deliveredAt: null };
    expect(await all[1]!.recordAttempt(row.id, 0, patch)).toBe(true);
    expect(await all[2]!.recordAttempt(row.id, 0, { ...patch, status: 'delivered' })).toBe(false); // a late worker
    expect(await all[0]!.get(row.id)).toMatchObject({ status: 'pending', attempts: 1, lastStatus: 503 });
  });

  it('retries a failed delivery on an operator’s word, audited; refuses a delivered or unknown one', async () => {
    const [a] = t.replicas;
    const { webhooks } = stores(a);
    const [row] = (await webhooks.list({ limit: 1 })).rows;
    await webhooks.recordAttempt(row!.id, row!.attempts, { status: 'failed', attempts: 3, nextAttemptAt: T0, lastAttemptAt: T0, lastStatus: null, lastError: 'ECONNREFUSED', deliveredAt: null });
    expect((await webhooks.list({ limit: 10, status: 'failed' })).rows.map((r) => r.id)).toEqual([row!.id]);
    const d = await retryDelivery({ clock, stores: { webhooks } }, row!.id, 'operator:olga', 'receiver fixed');
    expect(d).toMatchObject({ id: row!.id, status: 'pending', attempts: 0 });
    const audit = await t.rows<{ kind: string; subject: string }>(`SELECT kind, subject FROM gov_activities WHERE kind = 'webhook.delivery_retried'`);
    expect(audit).toEqual([{ kind: 'webhook.delivery_retried', subject: row!.id }]);
    await expect(retryDelivery({ clock, stores: { webhooks } }, 'whd_01JNOSUCH0000000000000000', 'operator:olga')).rejects.toMatchObject({ code: 'not_found' });
    await webhooks.recordAttempt(row!.id, 0, { status: 'delivered', attempts: 1, nextAttemptAt: T0, lastAttemptAt: T0, lastStatus: 204, lastError: null, deliveredAt: T0 });
    await expect(retryDelivery({ clock, stores: { webhooks } }, row!.id, 'operator:olga')).rejects.toMatchObject({ code: 'conflict' });
  });

  it('announces a grant nearing expiry once, however many replicas check at once', async () => {
    const all = t.replicas.map((h) => stores(h).webhooks);
    const rows = (id: string): ActivityInput[] => [{ actor: 'system', kind: 'grant.expiring', subject: id, detail: { expires_at: 'soon' } }];
    const results = await Promise.all([...all, ...all].map((s) => s.recordExpiring([...rows('grt_X'), ...rows('grt_Y')])));
    expect(results.flat().sort()).toEqual(['grt_X', 'grt_Y']);
    expect(await all[0]!.recordExpiring(rows('grt_X'))).toEqual([]);
    expect((await t.rows<{ n: number | string }>(`SELECT count(*) AS n FROM gov_activities WHERE kind = 'grant.expiring'`))[0]!.n).toEqual(engine.name === 'sqlite' ? 2 : '2');
    expect((await t.verifyChain()).ok).toBe(true);
  });
});
