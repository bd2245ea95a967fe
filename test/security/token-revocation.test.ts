/**
 * Revoking operator/auditor bearer tokens one at a time (`token_revocations`): by jti, by subject
 * (and role) up to a second, through the service, another connection, the HTTP route and the real
 * CLI process; every revocation takes effect on the very next request.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenRevocations } from '../../src/modules/tokens/revocations.js';
import { sqliteTokenStore } from '../../src/modules/tokens/store.js';
import { openDb } from '../../src/platform/db/open.js';
import { bearer, tokenFor, type Answer } from '../grants/helpers.js';
import { REPO_ROOT, startBroker, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';

describe('token revocation', () => {
  let broker: TestBroker;
  let operator: string;
  beforeAll(async () => {
    broker = await startBroker();
    operator = await tokenFor(broker, 'operator', 'olga');
  });
  afterAll(() => broker.stop());

  const mint = async (role: 'operator' | 'auditor', subject: string) => (await broker.deps.tokens.mint(role, subject, 3600)).claims.jti;
  const minted = (role: 'operator' | 'auditor', subject: string) => broker.deps.tokens.mint(role, subject, 3600);
  const get = (token: string) => bearer(broker, token, 'GET', '/v1/grants');
  const rows = (where: string, ...args: unknown[]) => broker.deps.db.sqlite.prepare(`SELECT * FROM token_revocations WHERE ${where}`).all(...args) as Record<string, unknown>[];

  /** The answer to a revoked token: 401, a Bearer invalid_token challenge, a sentence saying so, never the token. */
  function expectRevoked(res: Answer, token: string): void {
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('unauthorized');
    expect(res.body.detail).toMatch(/has been revoked \(rvk_[0-9A-Z]{26}, at .+\); ask an operator for a new one\./);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="nanoclaw-broker", error="invalid_token"');
    expect(JSON.stringify(res.body)).not.toContain(token);
  }

  describe('by jti', () => {
    it('a working token is refused on the very next request after the service revokes its jti', async () => {
      const { token, claims } = await minted('auditor', 'ada');
      const other = (await minted('auditor', 'ada')).token;
      expect((await get(token)).status).toBe(200);
      const { revocation, outcome } = await broker.deps.tokens.revocations.revoke({ jti: claims.jti, reason: 'laptop lost' }, 'operator:test');
      expect(outcome).toBe('revoked');
      expect(revocation).toMatchObject({ jti: claims.jti, subject: null, role: null, issued_before: null, revoked_by: 'operator:test', reason: 'laptop lost' });
      expectRevoked(await get(token), token);
      // another token of the same subject is another jti: unaffected
      expect((await get(other)).status).toBe(200);
    });

    it('a revocation written by another connection (another process) applies on the next request', async () => {
      const { token, claims } = await minted('operator', 'otto');
      expect((await get(token)).status).toBe(200);
      const db = openDb({ path: broker.deps.db.path });
      try {
        await new TokenRevocations(sqliteTokenStore(db, broker.clock)).revoke({ jti: claims.jti, reason: 'from elsewhere' }, 'operator:elsewhere');
      } finally {
        db.sqlite.close();
      }
      expectRevoked(await get(token), token);
    });

    it('revoking the same jti again writes nothing and answers the first revocation', async () => {
      const jti = 'not-even-a-real-token';
      const first = await broker.deps.tokens.revocations.revoke({ jti, reason: 'one' }, 'operator:test');
      const again = await broker.deps.tokens.revocations.revoke({ jti, reason: 'two' }, 'operator:test');
      expect(again.outcome).toBe('already_revoked');
      expect(again.revocation).toEqual(first.revocation);
      expect(rows('jti = ?', jti)).toHaveLength(1);
    });
  });

  describe('by subject', () => {
    it('refuses every older token of the subject, not other subjects, and not a token minted a second later', async () => {
      const op = (await minted('operator', 'sam')).token;
      const au = (await minted('auditor', 'sam')).token;
      const bystander = (await minted('auditor', 'samantha')).token;
      broker.clock.advance(1000);
      const { revocation } = await broker.deps.tokens.revocations.revoke({ subject: 'sam', reason: 'left the team' }, 'operator:test');
      expect(revocation.issued_before).toBe(new Date(Math.floor(broker.clock.now() / 1000) * 1000).toISOString());
      expectRevoked(await get(op), op);
      expectRevoked(await get(au), au);
      expect((await get(bystander)).status).toBe(200);
      // minted in the revocation's own second: iat <= issued_before, refused too
      const sameSecond = (await minted('auditor', 'sam')).token;
      expectRevoked(await get(sameSecond), sameSecond);
      broker.clock.advance(1000);
      const fresh = (await minted('auditor', 'sam')).token;
      expect((await get(fresh)).status).toBe(200);
    });

    it('with a role, only that role of the subject', async () => {
      const au = (await minted('auditor', 'rita')).token;
      const op = (await minted('operator', 'rita')).token;
      broker.clock.advance(1000);
      await broker.deps.tokens.revocations.revoke({ subject: 'rita', role: 'auditor', reason: 'audit over' }, 'operator:test');
      expectRevoked(await get(au), au);
      expect((await get(op)).status).toBe(200);
      broker.clock.advance(1000);
    });

    it('the same subject revocation twice in one second writes one row', async () => {
      broker.clock.advance(1000);
      const first = await broker.deps.tokens.revocations.revoke({ subject: 'twice', role: 'auditor', reason: 'a' }, 'operator:test');
      const covered = await broker.deps.tokens.revocations.revoke({ subject: 'twice', role: 'auditor', reason: 'b' }, 'operator:test');
      expect(covered).toEqual({ revocation: first.revocation, outcome: 'already_revoked' });
      // all roles is wider than one role: a new row
      expect((await broker.deps.tokens.revocations.revoke({ subject: 'twice', reason: 'c' }, 'operator:test')).outcome).toBe('revoked');
      expect(rows('subject = ?', 'twice')).toHaveLength(2);
      broker.clock.advance(1000);
    });
  });

  describe('POST and GET /v1/tokens/revocations', () => {
    it('an operator revokes an auditor token: 201, the token is refused next, replaying the key writes no second row', async () => {
      const { token, claims } = await minted('auditor', 'audrey');
      expect((await get(token)).status).toBe(200);
      const body = { jti: claims.jti, reason: 'rotation' };
      const res = await bearer(broker, operator, 'POST', '/v1/tokens/revocations', { json: body, idempotencyKey: 'rvk-audrey-1' });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ jti: claims.jti, subject: null, role: null, revoked_by: 'operator:olga', reason: 'rotation' });
      expect(res.body.id).toMatch(/^rvk_[0-9A-Z]{26}$/);
      expectRevoked(await get(token), token);

      const replay = await bearer(broker, operator, 'POST', '/v1/tokens/revocations', { json: body, idempotencyKey: 'rvk-audrey-1' });
      expect(replay.status).toBe(201);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body).toEqual(res.body);
      expect(rows('jti = ?', claims.jti)).toHaveLength(1);

      const reused = await bearer(broker, operator, 'POST', '/v1/tokens/revocations', { json: { ...body, reason: 'other' }, idempotencyKey: 'rvk-audrey-1' });
      expect(reused.status).toBe(422);
      expect(reused.body.code).toBe('idempotency_key_reused');

      const again = await bearer(broker, operator, 'POST', '/v1/tokens/revocations', { json: body });
      expect(again.status).toBe(200);
      expect(again.body).toEqual(res.body);
      expect(rows('jti = ?', claims.jti)).toHaveLength(1);
    });

    it('by subject and role over HTTP', async () => {
      const au = (await minted('auditor', 'hugo')).token;
      const op = (await minted('operator', 'hugo')).token;
      broker.clock.advance(1000);
      const res = await bearer(broker, operator, 'POST', '/v1/tokens/revocations', { json: { subject: 'hugo', role: 'auditor', reason: 'moved' } });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ jti: null, subject: 'hugo', role: 'auditor', reason: 'moved' });
      expect(Date.parse(res.body.issued_before)).toBe(Math.floor(broker.clock.now() / 1000) * 1000);
      expectRevoked(await get(au), au);
      expect((await get(op)).status).toBe(200);
      broker.clock.advance(1000);
    });

    it('auditors read revocations but may not revoke; agent groups get 403 on both', async () => {
      const auditor = await tokenFor(broker, 'auditor', 'reader');
      const jti = await mint('auditor', 'victim');
      const post = await bearer(broker, auditor, 'POST', '/v1/tokens/revocations', { json: { jti, reason: 'x' } });
      expect(post.status).toBe(403);
      expect(post.body.code).toBe('forbidden');
      expect(rows('jti = ?', jti)).toHaveLength(0);

      const list = await bearer(broker, auditor, 'GET', '/v1/tokens/revocations');
      expect(list.status).toBe(200);
      expect(list.body.data.length).toBeGreaterThan(0);
      expect(list.body.data[0]).toHaveProperty('revoked_at');
      expect(list.body.data[0]).not.toHaveProperty('idempotency_key');
      const one = await bearer(broker, auditor, 'GET', `/v1/tokens/revocations?subject=hugo`);
      expect(one.body.data.map((r: any) => r.subject)).toEqual(['hugo']);
      const page = await bearer(broker, auditor, 'GET', '/v1/tokens/revocations?limit=1');
      expect(page.body.has_more).toBe(true);
      const next = await bearer(broker, auditor, 'GET', `/v1/tokens/revocations?limit=1&starting_after=${page.body.next_cursor}`);
      expect(next.body.data[0].id > page.body.data[0].id).toBe(true);
      expect((await bearer(broker, auditor, 'GET', '/v1/tokens/revocations?limit=0')).status).toBe(422);

      for (const group of ['main', 'developer']) {
        const signedPost = await broker.client(group).post('/v1/tokens/revocations', { jti, reason: 'x' });
        expect(signedPost.status, group).toBe(403);
        expect(signedPost.body.code).toBe('forbidden');
        expect((await broker.client(group).get('/v1/tokens/revocations')).status, group).toBe(403);
      }
      expect(rows('jti = ?', jti)).toHaveLength(0);
    });

    it('bad bodies answer 422 validation_failed (400 malformed_json) and write nothing', async () => {
      const before = rows('1').length;
      for (const json of [
        { jti: 'a', subject: 'b', reason: 'both' },
        { reason: 'neither' },
        { jti: 'a' },
        { jti: 'a', reason: '   ' },
        { jti: 'a', reason: 'extra', extra: true },
        { jti: 'a', role: 'auditor', reason: 'role with jti' },
        { subject: 'b', role: 'admin', reason: 'bad role' },
        { subject: 'not a subject!', reason: 'bad subject' },
        { jti: 'x'.repeat(129), reason: 'long' },
        [],
      ]) {
        const res = await bearer(broker, operator, 'POST', '/v1/tokens/revocations', { json });
        expect(res.status, JSON.stringify(json)).toBe(422);
        expect(res.body.code).toBe('validation_failed');
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      }
      const malformed = await bearer(broker, operator, 'POST', '/v1/tokens/revocations', { body: '{', headers: { 'content-type': 'application/json' } });
      expect(malformed.status).toBe(400);
      expect(malformed.body.code).toBe('malformed_json');
      const noKey = await bearer(broker, operator, 'POST', '/v1/tokens/revocations', { json: { jti: 'a', reason: 'r' }, idempotencyKey: null });
      expect(noKey.status).toBe(400);
      expect(noKey.body.code).toBe('idempotency_key_missing');
      expect(rows('1')).toHaveLength(before);
    });

    it('the audit trail holds token.revoked (never a token)', async () => {
      const res = await bearer(broker, operator, 'GET', '/v1/audit?kind=token.revoked&actor=operator:olga');
      expect(res.status).toBe(200);
      const details = res.body.data.map((r: any) => r.detail);
      expect(details).toContainEqual(expect.objectContaining({ reason: 'rotation', jti: expect.any(String) }));
      const hugo = res.body.data.find((r: any) => r.detail.subject === 'hugo');
      expect(hugo.subject).toMatch(/^rvk_/);
      expect(hugo.detail).toEqual({ id: hugo.subject, subject: 'hugo', role: 'auditor', issued_before: expect.any(String), reason: 'moved' });
      const all = broker.deps.db.sqlite.prepare('SELECT detail FROM gov_activities').all() as { detail: string }[];
      expect(all.some((r) => r.detail.includes(operator))).toBe(false);
    });

    it('an operator may revoke its own token (break-glass): refused from the next request', async () => {
      const own = await tokenFor(broker, 'operator', 'selfie');
      broker.clock.advance(1000);
      const res = await bearer(broker, own, 'POST', '/v1/tokens/revocations', { json: { subject: 'selfie', reason: 'compromised' } });
      expect(res.status).toBe(201);
      expect(res.body.revoked_by).toBe('operator:selfie');
      expectRevoked(await bearer(broker, own, 'GET', '/v1/tokens/revocations'), own);
      broker.clock.advance(1000);
    });
  });

  describe('storage', () => {
    it('rows cannot be updated or deleted, and name exactly one target', () => {
      const sqlite = broker.deps.db.sqlite;
      expect(() => sqlite.prepare("UPDATE token_revocations SET reason = 'changed'").run()).toThrow(/append-only/);
      expect(() => sqlite.prepare('DELETE FROM token_revocations').run()).toThrow(/append-only/);
      const insert = sqlite.prepare(
        'INSERT INTO token_revocations (id, jti, subject, role, issued_before, revoked_at, revoked_by, reason) VALUES (?, ?, ?, ?, ?, 0, ?, ?)',
      );
      expect(() => insert.run('rvk_both', 'j', 's', null, 1, 'operator:t', 'r')).toThrow(/CHECK/);
      expect(() => insert.run('rvk_none', null, null, null, null, 'operator:t', 'r')).toThrow(/CHECK/);
      expect(() => insert.run('rvk_norange', null, 's', null, null, 'operator:t', 'r')).toThrow(/CHECK/);
      expect(() => insert.run('rvk_role', null, 's', 'admin', 1, 'operator:t', 'r')).toThrow(/CHECK/);
    });

    it('the revocation check is one indexed SELECT', () => {
      const plan = broker.deps.db.sqlite
        .prepare("EXPLAIN QUERY PLAN SELECT id FROM token_revocations WHERE jti = 'a' OR (subject = 'b' AND issued_before >= 1 AND (role IS NULL OR role = 'auditor')) LIMIT 1")
        .all() as { detail: string }[];
      const text = plan.map((p) => p.detail).join('\n');
      expect(text).toContain('token_revocations_jti_idx');
      expect(text).toContain('token_revocations_subject_idx');
      expect(text).not.toMatch(/SCAN token_revocations/);
    });
  });

  describe('broker token revoke (a real CLI process on the same data dir)', () => {
    it('revokes by jti, the running server refuses the token next, a second run writes nothing', async () => {
      const env = { BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'warn' };
      const { token, claims } = await minted('auditor', 'cli-victim');
      expect((await get(token)).status).toBe(200);

      const out = await runCli(['token', 'revoke', '--jti', claims.jti, '--reason', 'offboarded'], env);
      expect(out.code, out.stderr).toBe(0);
      expect(JSON.parse(out.stdout)).toMatchObject({ jti: claims.jti, reason: 'offboarded', revoked_by: expect.stringMatching(/^operator:/) });
      expect(out.stderr).toContain('revoked (rvk_');
      expectRevoked(await get(token), token);
      const audit = await bearer(broker, operator, 'GET', `/v1/audit?kind=token.revoked&subject=${JSON.parse(out.stdout).id}`);
      expect(audit.body.data).toHaveLength(1);
      expect(audit.body.data[0].detail).toMatchObject({ jti: claims.jti, reason: 'offboarded' });

      const again = await runCli(['token', 'revoke', '--jti', claims.jti, '--reason', 'offboarded'], env);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain('already revoked');
      expect(rows('jti = ?', claims.jti)).toHaveLength(1);

      const listed = await runCli(['token', 'revocations', '--jti', claims.jti], env);
      expect(listed.code, listed.stderr).toBe(0);
      expect(JSON.parse(listed.stdout).data).toHaveLength(1);

      for (const args of [
        ['token', 'revoke', '--jti', claims.jti],
        ['token', 'revoke', '--reason', 'no target'],
        ['token', 'revoke', '--jti', claims.jti, '--subject', 'cli-victim', '--reason', 'both'],
      ]) {
        const bad = await runCli(args, env);
        expect(bad.code, args.join(' ')).toBe(1);
        expect(bad.stdout).toBe('');
        expect(bad.stderr).toMatch(/broker token revoke: .*(reason is required|exactly one of jti or subject)/);
      }
    });
  });
});
