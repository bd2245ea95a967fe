/**
 * The delivery worker against a real receiver on 127.0.0.1 (signatures verified with the
 * `standardwebhooks` library), on a real broker's SQLite database and a manual clock: a failed
 * attempt keeps the delivery pending with its next attempt after the backoff, stored in the row
 * (not due before it, and a new worker, as after a restart, sees the same schedule); a delivery
 * becomes `failed` after `max_attempts`; a 2xx makes it `delivered`, with `webhook-id` = the event
 * id on every attempt. The policy loader refuses what would send unsigned or to a wrong place, and
 * the metrics show the deliveries and the outbox lag.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backoffMs, deliverDue } from '../../src/modules/webhooks/delivery.js';
import { fanOut, WEBHOOK_CONSUMER } from '../../src/modules/webhooks/fanout.js';
import { loadWebhooks, type WebhookPolicy } from '../../src/modules/webhooks/policy.js';
import { startWebhooks } from '../../src/modules/webhooks/service.js';
import { runOutboxBatch } from '../../src/platform/outbox/consumer.js';
import { startBroker, tempDir } from '../helpers/harness.js';
import { Receiver, until } from './receiver.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const receiver = new Receiver(SECRET);
await receiver.start();
const broker = await startBroker({ listen: false });
afterAll(async () => {
  await receiver.stop();
  await broker.stop();
});

const policyFor = (maxAttempts: number): WebhookPolicy => ({
  endpoints: [{ id: 'rx', url: receiver.url, events: ['grant.activated', 'grant.awaiting_approval'], secret: SECRET }],
  refusedBurst: { threshold: 100, windowS: 60 },
  expiringWithinS: 3600,
  delivery: { maxAttempts, initialDelayMs: 1000, maxDelayMs: 4000, timeoutMs: 2000, pollMs: 50 },
});

describe('the delivery worker', () => {
  const { webhooks, outbox } = broker.deps.stores;
  const clock = broker.clock;
  const worker = (maxAttempts: number) => ({ store: webhooks, policy: policyFor(maxAttempts), clock, logger: broker.deps.logger, random: () => 0 });
  const grant = async (reason: string) => {
    const r = await broker.client('main').post('/v1/grants', { group: 'developer', provider: 'github', level: 1, reason });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  };

  it('retries with backoff kept in the row, then delivers once the receiver is back', async () => {
    await outbox.start(WEBHOOK_CONSUMER, 'head');
    await grant('worker test');
    await runOutboxBatch({ store: outbox, consumer: WEBHOOK_CONSUMER, batchSize: 100, handle: fanOut({ store: webhooks, policy: policyFor(5), clock }) });
    const [row] = (await webhooks.list({ limit: 10 })).rows;
    expect(row).toMatchObject({ endpointId: 'rx', eventType: 'grant.activated', status: 'pending', attempts: 0 });

    receiver.mode = 'unavailable';
    const t0 = clock.now();
    expect(await deliverDue(worker(5))).toBe(1);
    expect(await webhooks.get(row!.id)).toMatchObject({ status: 'pending', attempts: 1, lastStatus: 503, lastError: 'HTTP 503', nextAttemptAt: t0 + 500 });
    expect(await deliverDue(worker(5))).toBe(0); // not due yet
    clock.advance(500);
    expect(await deliverDue(worker(5))).toBe(1); // a new worker (as after a restart) reads the schedule from the row
    expect(await webhooks.get(row!.id)).toMatchObject({ attempts: 2, nextAttemptAt: clock.now() + 1000 });

    receiver.mode = 'up';
    clock.advance(1000);
    expect(await deliverDue(worker(5))).toBe(1);
    expect(await webhooks.get(row!.id)).toMatchObject({ status: 'delivered', attempts: 3, lastStatus: 204, deliveredAt: clock.now() });
    expect(receiver.refused).toBe(2);
    expect(receiver.bad).toEqual([]);
    expect(receiver.accepted.map((r) => [r.id, r.body.type])).toEqual([[row!.eventId, 'grant.activated']]);
    expect(await deliverDue(worker(5))).toBe(0);
  });

  it('gives up after max_attempts (connection refused) and an operator retry sends it again', async () => {
    await grant('worker test 2');
    await runOutboxBatch({ store: outbox, consumer: WEBHOOK_CONSUMER, batchSize: 100, handle: fanOut({ store: webhooks, policy: policyFor(2), clock }) });
    const { rows } = await webhooks.list({ limit: 10, status: 'pending' });
    expect(rows).toHaveLength(1);
    await receiver.stop();
    expect(await deliverDue(worker(2))).toBe(1);
    clock.advance(10_000);
    expect(await deliverDue(worker(2))).toBe(1);
    expect(await webhooks.get(rows[0]!.id)).toMatchObject({ status: 'failed', attempts: 2, lastStatus: null, lastError: 'ECONNREFUSED' });
    await receiver.start();
    receiver.mode = 'up';
    expect((await webhooks.list({ limit: 10, status: 'failed' })).rows.map((r) => r.id)).toEqual([rows[0]!.id]);
  });

  it('runs as loops with metrics: deliveries by status and the outbox lag', async () => {
    const loops = await startWebhooks(broker.deps, policyFor(3));
    try {
      await grant('worker test 3');
      await until('the new delivery to be delivered', async () => (await webhooks.counts()).delivered === 2);
      const text = await broker.deps.metrics.registry.metrics();
      expect(text).toMatch(/broker_webhook_deliveries\{status="delivered"\} 2/);
      expect(text).toMatch(/broker_webhook_deliveries\{status="failed"\} 1/);
      expect(text).toMatch(/broker_webhook_attempts_total\{endpoint="rx",result="delivered"\} 1/);
      expect(text).toMatch(/broker_outbox_lag\{consumer="webhooks"\} \d+/);
    } finally {
      await loops.stop();
    }
  });
});

describe('webhooks.json', () => {
  const write = (json: unknown) => {
    const dir = tempDir('broker-webhooks-policy-');
    fs.writeFileSync(path.join(dir, 'webhooks.json'), JSON.stringify(json));
    return dir;
  };
  const endpoint = { id: 'a', url: 'https://hooks.example/x', secret_env: 'WH_SECRET', events: ['grant.revoked'] };

  it('is optional, and fills in the defaults', () => {
    expect(loadWebhooks(tempDir())).toBeNull();
    const p = loadWebhooks(write({ endpoints: [endpoint] }), { WH_SECRET: SECRET })!;
    expect(p).toMatchObject({ refusedBurst: { threshold: 20, windowS: 300 }, expiringWithinS: 3600, delivery: { maxAttempts: 10, initialDelayMs: 5000, pollMs: 1000 } });
    expect(p.endpoints[0]).toMatchObject({ id: 'a', secret: SECRET });
  });

  it.each([
    ['an unset secret variable', { endpoints: [endpoint] }, {}, /WH_SECRET \(its secret\) is not set/],
    ['a secret that is not whsec_', { endpoints: [endpoint] }, { WH_SECRET: 'hunter2' }, /must hold a Standard Webhooks secret/],
    ['plain http to another host', { endpoints: [{ ...endpoint, url: 'http://hooks.example/x' }] }, { WH_SECRET: SECRET }, /must be https/],
    ['an unknown event', { endpoints: [{ ...endpoint, events: ['grant.exploded'] }] }, { WH_SECRET: SECRET }, /events/],
    ['a secret in the file', { endpoints: [{ ...endpoint, secret: SECRET }] }, { WH_SECRET: SECRET }, /secret/],
    ['two endpoints with one id', { endpoints: [endpoint, endpoint] }, { WH_SECRET: SECRET }, /duplicate endpoint id "a"/],
  ])('refuses %s', (_what, json, env, message) => {
    expect(() => loadWebhooks(write(json), env)).toThrow(message);
  });

  it('backs off exponentially up to the cap, with jitter in [0.5, 1)', () => {
    const d = { initialDelayMs: 1000, maxDelayMs: 5000 };
    expect([1, 2, 3, 4].map((n) => backoffMs(n, d, () => 0))).toEqual([500, 1000, 2000, 2500]);
    expect(backoffMs(2, d, () => 0.999)).toBeLessThan(2000);
  });
});
