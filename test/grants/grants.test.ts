import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestBroker } from '../helpers/harness.js';
import { bearer, createAsMain, DAY_MS, startGrantsBroker, tokenFor, WEEK_MS } from './helpers.js';

describe('grant rules over a real server', () => {
  let broker: TestBroker;
  let operator: string;
  let auditor: string;
  beforeAll(async () => {
    broker = await startGrantsBroker();
    operator = await tokenFor(broker, 'operator', 'olga');
    auditor = await tokenFor(broker, 'auditor', 'audrey');
  });
  afterAll(() => broker.stop());

  describe('who grants', () => {
    const terms = { group: 'developer', provider: 'ops', level: 1, reason: 'read dashboards' };

    it('an operator token may grant; requested_by names the operator', async () => {
      const res = await bearer(broker, operator, 'POST', '/v1/grants', { json: terms });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toMatchObject({ group: 'developer', level: 1, status: 'active', requested_by: 'operator:olga', expires_at: null });
      expect(res.body.id).toMatch(/^grt_[0-9A-HJKMNP-TV-Z]{26}$/);
      expect(res.headers.get('location')).toBe(`/v1/grants/${res.body.id}`);
    });

    it('the main group may grant through a signed request', async () => {
      const res = await broker.client('main').post('/v1/grants', terms);
      expect(res.status).toBe(201);
      expect(res.body.requested_by).toBe('main');
    });

    it('any other group is refused 403, even for itself', async () => {
      for (const group of ['developer', 'security']) {
        const res = await broker.client(group).post('/v1/grants', { ...terms, group });
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('forbidden');
      }
    });

    it('an auditor token is refused 403', async () => {
      const res = await bearer(broker, auditor, 'POST', '/v1/grants', { json: terms });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
    });

    it('refusals create nothing', async () => {
      const count = async () => (await broker.rows<{ n: number }>('SELECT CAST(COUNT(*) AS INTEGER) AS n FROM grants'))[0]!.n;
      const before = await count();
      await broker.client('developer').post('/v1/grants', terms);
      await bearer(broker, auditor, 'POST', '/v1/grants', { json: terms });
      expect(await count()).toBe(before);
    });
  });

  describe('ceilings from policies/groups.json', () => {
    it.each([
      ['security', 2, 'L1'],
      ['developer', 3, 'L2'],
    ])('%s cannot be granted L%i (ceiling %s): 422 level_above_ceiling', async (group, level) => {
      const res = await broker.client('main').post('/v1/grants', { group, provider: 'ops', level, reason: 'too much' });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('level_above_ceiling');
    });

    it('at the ceiling is fine (security L1, developer L2, main L3)', async () => {
      await createAsMain(broker, { group: 'security', level: 1 });
      await createAsMain(broker, { group: 'developer', level: 'L2' });
      const l3 = await createAsMain(broker, { group: 'main', level: 3 });
      expect(l3.status).toBe('pending_approval');
    });
  });

  describe('expiry', () => {
    it('L1 has no expiry unless asked', async () => {
      expect((await createAsMain(broker, { level: 1 })).expires_at).toBeNull();
      const asked = await createAsMain(broker, { level: 1, ttl_s: 60 });
      expect(asked.expires_at).toBe(new Date(broker.clock.now() + 60_000).toISOString());
    });

    it('L2 without an expiry gets the 7-day maximum', async () => {
      const g = await createAsMain(broker, { level: 2 });
      expect(g.ttl_s).toBe(WEEK_MS / 1000);
      expect(g.expires_at).toBe(new Date(broker.clock.now() + WEEK_MS).toISOString());
    });

    for (const level of [2, 3]) {
      const group = level === 3 ? 'main' : 'developer';
      it(`L${level}: ttl_s of exactly 7 days is accepted, one second more is 422 expiry_too_long`, async () => {
        expect((await broker.client('main').post('/v1/grants', { group, provider: 'ops', level, reason: 'r', ttl_s: WEEK_MS / 1000 })).status).toBe(201);
        const long = await broker.client('main').post('/v1/grants', { group, provider: 'ops', level, reason: 'r', ttl_s: WEEK_MS / 1000 + 1 });
        expect(long.status).toBe(422);
        expect(long.body.code).toBe('expiry_too_long');
      });

      it(`L${level}: expires_at exactly 7 days ahead is accepted, 1 ms later is 422`, async () => {
        const now = broker.clock.now();
        const ok = await broker.client('main').post('/v1/grants', { group, provider: 'ops', level, reason: 'r', expires_at: new Date(now + WEEK_MS).toISOString() });
        expect(ok.status, JSON.stringify(ok.body)).toBe(201);
        const long = await broker.client('main').post('/v1/grants', { group, provider: 'ops', level, reason: 'r', expires_at: new Date(now + WEEK_MS + 1).toISOString() });
        expect(long.status).toBe(422);
        expect(long.body.code).toBe('expiry_too_long');
      });
    }

    it('an expiry in the past, or both ttl_s and expires_at, is 422 validation_failed', async () => {
      const past = await broker.client('main').post('/v1/grants', { group: 'developer', provider: 'ops', level: 2, reason: 'r', expires_at: new Date(broker.clock.now()).toISOString() });
      expect(past.body.code).toBe('validation_failed');
      const both = await broker.client('main').post('/v1/grants', { group: 'developer', provider: 'ops', level: 2, reason: 'r', ttl_s: 60, expires_at: new Date(broker.clock.now() + 60_000).toISOString() });
      expect(both.body.code).toBe('validation_failed');
    });

    it('a grant is active until the millisecond before expires_at and expired at that exact instant', async () => {
      const g = await createAsMain(broker, { group: 'developer', level: 2, ttl_s: 3600 });
      const expiresAt = Date.parse(g.expires_at);
      expect(expiresAt).toBe(broker.clock.now() + 3_600_000);
      await broker.deps.readModel.refresh(); // as a request's authentication does (a no-op on SQLite)
      const view = broker.deps.grants.candidates('developer', 'ops').find((v) => v.id === g.id)!;
      expect(view.expiresAt).toBe(expiresAt);
      const start = broker.clock.now();
      try {
        broker.clock.set(expiresAt - 1);
        expect((await bearer(broker, operator, 'GET', `/v1/grants/${g.id}`)).body.status).toBe('active');
        broker.clock.set(expiresAt);
        expect((await bearer(broker, operator, 'GET', `/v1/grants/${g.id}`)).body.status).toBe('expired');
        const expired = await bearer(broker, operator, 'GET', '/v1/grants?status=expired&group=developer');
        expect(expired.body.data.map((x: any) => x.id)).toContain(g.id);
      } finally {
        broker.clock.set(start);
      }
    });
  });

  describe('request shape', () => {
    it('unknown provider, action or group, and stray fields are 422 validation_failed', async () => {
      const main = broker.client('main');
      for (const body of [
        { group: 'developer', provider: 'nope', level: 1, reason: 'r' },
        { group: 'developer', provider: 'ops', level: 1, reason: 'r', allowed_actions: ['ops.missing'] },
        { group: 'developer', provider: 'ops', level: 1, reason: 'r', denied_actions: ['other.*'] },
        { group: 'ghosts', provider: 'ops', level: 1, reason: 'r' },
        { group: 'developer', provider: 'ops', level: 1, reason: 'r', surprise: true },
        { group: 'developer', provider: 'ops', level: 1, reason: '  ' },
        { group: 'developer', provider: 'ops', level: 1, reason: 'r', resources: ['acme/*/x'] },
      ]) {
        const res = await main.post('/v1/grants', body);
        expect(res.status, JSON.stringify(body)).toBe(422);
        expect(res.body.code).toBe('validation_failed');
      }
    });

    it('patterns are deduplicated and sorted, so their order is not part of the terms', async () => {
      const a = await createAsMain(broker, { level: 1, allowed_actions: ['ops.read', 'ops.*', 'ops.read'], resources: ['b/*', 'a/x'] });
      expect(a.allowed_actions).toEqual(['ops.*', 'ops.read']);
      expect(a.resources).toEqual(['a/x', 'b/*']);
      const b = await createAsMain(broker, { level: 1, allowed_actions: ['ops.*', 'ops.read'], resources: ['a/x', 'b/*'] });
      expect(b.digest).toBe(a.digest);
    });
  });

  describe('idempotent creation', () => {
    it('the same key and body replay the first grant; another body is 422 idempotency_key_reused', async () => {
      const body = { group: 'developer', provider: 'ops', level: 1, reason: 'idempotent' };
      const first = await bearer(broker, operator, 'POST', '/v1/grants', { json: body, idempotencyKey: 'grant-key-1' });
      const again = await bearer(broker, operator, 'POST', '/v1/grants', { json: body, idempotencyKey: 'grant-key-1' });
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body.id).toBe(first.body.id);
      const other = await bearer(broker, operator, 'POST', '/v1/grants', { json: { ...body, reason: 'other' }, idempotencyKey: 'grant-key-1' });
      expect(other.status).toBe(422);
      expect(other.body.code).toBe('idempotency_key_reused');
      const [created] = await broker.rows<{ n: number }>("SELECT CAST(COUNT(*) AS INTEGER) AS n FROM grants WHERE reason = 'idempotent'");
      expect(created!.n).toBe(1);
    });

    it('a bearer POST without Idempotency-Key is 400 idempotency_key_missing', async () => {
      const res = await bearer(broker, operator, 'POST', '/v1/grants', { json: { group: 'developer', provider: 'ops', level: 1, reason: 'r' }, idempotencyKey: null });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('idempotency_key_missing');
    });
  });

  describe('reading grants', () => {
    it('GET /v1/grants/{id} has the timeline of audit rows', async () => {
      const g = await createAsMain(broker, { level: 2, ttl_s: 600 });
      await broker.client('main').post(`/v1/grants/${g.id}/revoke`, { reason: 'done early' });
      const res = await bearer(broker, auditor, 'GET', `/v1/grants/${g.id}`);
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('revoked');
      expect(res.body.timeline.map((t: any) => [t.kind, t.actor])).toEqual([
        ['grant.created', 'main'],
        ['grant.revoked', 'main'],
      ]);
      expect(res.body.timeline[1].detail.reason).toBe('done early');
    });

    it('an unknown id is 404 not_found', async () => {
      const res = await bearer(broker, operator, 'GET', '/v1/grants/grt_nope');
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('not_found');
    });

    it('lists page with starting_after and filter by group, provider and status', async () => {
      const page1 = await bearer(broker, operator, 'GET', '/v1/grants?group=developer&provider=ops&limit=2');
      expect(page1.body.data).toHaveLength(2);
      expect(page1.body.has_more).toBe(true);
      const page2 = await bearer(broker, operator, 'GET', `/v1/grants?group=developer&provider=ops&limit=2&starting_after=${page1.body.next_cursor}`);
      expect(page2.body.data[0].id > page1.body.data[1].id).toBe(true);
      const pending = await bearer(broker, operator, 'GET', '/v1/grants?status=pending_approval');
      expect(pending.body.data.length).toBeGreaterThan(0);
      expect(pending.body.data.every((g: any) => g.status === 'pending_approval' && g.group === 'main')).toBe(true);
      const bad = await bearer(broker, operator, 'GET', '/v1/grants?status=sleeping');
      expect(bad.body.code).toBe('validation_failed');
    });
  });
});

describe('at= history', () => {
  let broker: TestBroker;
  let operator: string;
  beforeAll(async () => {
    broker = await startGrantsBroker({ startMs: Date.UTC(2026, 2, 1, 12) });
    operator = await tokenFor(broker, 'operator', 'olga', 7 * 24 * 3600);
  });
  afterAll(() => broker.stop());

  const idsAt = async (ms: number) =>
    (await bearer(broker, operator, 'GET', `/v1/grants?group=developer&at=${encodeURIComponent(new Date(ms).toISOString())}`)).body.data.map((g: any) => g.id);

  it('gives what was active at an instant: activated by then, not yet expired, not yet revoked', async () => {
    const t0 = broker.clock.now();
    const expiring = await createAsMain(broker, { level: 2, ttl_s: 3600 }); // t0 … t0+1h
    broker.clock.advance(10 * 60_000);
    const revoked = await createAsMain(broker, { level: 1 }); // t0+10m …
    broker.clock.advance(10 * 60_000);
    await broker.client('main').post(`/v1/grants/${revoked.id}/revoke`, {}); // … t0+20m
    broker.clock.advance(DAY_MS);

    expect(await idsAt(t0 - 1)).toEqual([]);
    expect(await idsAt(t0)).toEqual([expiring.id]);
    expect(await idsAt(t0 + 15 * 60_000)).toEqual([expiring.id, revoked.id]);
    expect(await idsAt(t0 + 20 * 60_000)).toEqual([expiring.id]);
    expect(await idsAt(t0 + 3_600_000 - 1)).toEqual([expiring.id]);
    expect(await idsAt(t0 + 3_600_000)).toEqual([]);
    // Now both are over; their current status says why.
    const now = await bearer(broker, operator, 'GET', '/v1/grants?group=developer');
    expect(Object.fromEntries(now.body.data.map((g: any) => [g.id, g.status]))).toEqual({ [expiring.id]: 'expired', [revoked.id]: 'revoked' });
  });

  it('a malformed instant is 422 validation_failed', async () => {
    const res = await bearer(broker, operator, 'GET', '/v1/grants?at=yesterday');
    expect(res.status).toBe(422);
  });
});
