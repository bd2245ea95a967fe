/**
 * The token store on both engines, through the real revocation and key-registry services and
 * their plans: revocations with an Idempotency-Key (replay, reuse, already revoked), refusals and
 * audit failures that write nothing, revocations racing on three replicas with exactly one effect
 * (one key, one jti, one subject), a key registered and a rotation finished by three replicas at
 * once with one row and one audit row each, and an audit chain that verifies after.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenKeys } from '../../../src/modules/tokens/keys.js';
import { RevokeTokensInput, TokenRevocations } from '../../../src/modules/tokens/revocations.js';
import { sqliteTokenStore, type TokenStore } from '../../../src/modules/tokens/store.js';
import { pgTokenStore } from '../../../src/modules/tokens/store.pg.js';
import { ManualClock, type Clock } from '../../../src/platform/clock.js';
import type { IdempotencyRef } from '../../../src/platform/idempotency.js';
import { generateSigningKey, loadOrCreateSigningKey, writeSigningKeyFile } from '../../../src/platform/signing-key.js';
import { tempDir } from '../../helpers/harness.js';
import { ENGINES, pgOf, sqliteOf, type Engine, type Handle, type TestDatabase } from './engines.js';

const T0 = Date.UTC(2026, 4, 1, 12);
const idem = (key: string, body: unknown): IdempotencyRef => ({ key, requestHash: createHash('sha256').update(JSON.stringify(body)).digest('hex') });

/** The token store's behaviours, on `engine`, with stores made by `makeStore` (one per replica). */
function tokenStoreBehaviours(engine: Engine, makeStore: (h: Handle, clock: Clock) => TokenStore): void {
  describe(`TokenStore on ${engine.name}`, () => {
    const clock = new ManualClock(T0);
    let tdb: TestDatabase;
    let stores: TokenStore[];
    let revocations: TokenRevocations[];
    let keys: TokenKeys[];

    beforeAll(async () => {
      tdb = await engine.open('tokens');
      stores = tdb.replicas.map((h) => makeStore(h, clock));
      revocations = stores.map((s) => new TokenRevocations(s));
      keys = stores.map((s) => new TokenKeys(s));
    });
    afterAll(async () => {
      await tdb?.close();
    });

    const kinds = async (subject: string) => (await tdb.rows<{ kind: string }>(`SELECT kind FROM gov_activities WHERE subject = '${subject}' ORDER BY seq`)).map((r) => r.kind);
    const expectChain = async () => expect(await tdb.verifyChain()).toMatchObject({ ok: true });
    const probe = { jti: 'none', subject: 'nobody', role: 'operator' as const, issuedAtS: Math.floor(T0 / 1000) };

    it('revokes a jti with its audit row; the same key and body replays it, another body is 422, another key finds it already revoked', async () => {
      const body = RevokeTokensInput.parse({ jti: 'jti-1', reason: 'leaked' });
      const first = await revocations[0]!.revoke(body, 'operator:alice', idem('k-1', body));
      expect(first.outcome).toBe('revoked');
      expect(await revocations[1]!.revoke(body, 'operator:alice', idem('k-1', body))).toEqual({ revocation: first.revocation, outcome: 'replayed' });
      const other = RevokeTokensInput.parse({ jti: 'jti-2', reason: 'leaked' });
      await expect(revocations[2]!.revoke(other, 'operator:alice', idem('k-1', other))).rejects.toMatchObject({ code: 'idempotency_key_reused', status: 422 });
      expect(await revocations[2]!.revoke(body, 'operator:bob', idem('k-1', body))).toEqual({ revocation: first.revocation, outcome: 'already_revoked' });
      expect(await revocations[1]!.find({ ...probe, jti: 'jti-1' })).toEqual({ id: first.revocation.id, revokedAt: T0 });
      expect(await revocations[1]!.find(probe)).toBeNull();
      expect(await tdb.count('token_revocations')).toBe(1);
      expect(await kinds(first.revocation.id)).toEqual(['token.revoked']);
      await expectChain();
    });

    it('12 identical revocations with one key over 3 replicas: one revocation, one audit row, 11 replays', async () => {
      const body = RevokeTokensInput.parse({ jti: 'jti-race', reason: 'race' });
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => revocations[i % 3]!.revoke(body, 'operator:alice', idem('k-race', body))));
      expect(results.map((r) => r.outcome).sort()).toEqual([...Array(11).fill('replayed'), 'revoked']);
      expect(new Set(results.map((r) => r.revocation.id)).size).toBe(1);
      expect(await kinds(results[0]!.revocation.id)).toEqual(['token.revoked']);
      await expectChain();
    });

    it('one subject revoked with 9 different keys over 3 replicas in the same second: one revocation, the rest already revoked', async () => {
      const body = RevokeTokensInput.parse({ subject: 'mallory', reason: 'left the team' });
      const results = await Promise.all(Array.from({ length: 9 }, (_, i) => revocations[i % 3]!.revoke(body, 'operator:alice', idem(`k-sub-${i}`, body))));
      expect(results.map((r) => r.outcome).sort()).toEqual([...Array(8).fill('already_revoked'), 'revoked']);
      expect((await revocations[0]!.list({ subject: 'mallory', limit: 10 })).items).toHaveLength(1);
      expect(await revocations[2]!.find({ ...probe, subject: 'mallory', issuedAtS: Math.floor(T0 / 1000) })).not.toBeNull();
      await expectChain();
    });

    it('one jti revoked with 6 different keys over 3 replicas: one revocation, the rest already revoked', async () => {
      const body = RevokeTokensInput.parse({ jti: 'jti-keys', reason: 'race' });
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => revocations[i % 3]!.revoke(body, `operator:op${i}`, idem('k-same-name', body))));
      expect(results.map((r) => r.outcome).sort()).toEqual([...Array(5).fill('already_revoked'), 'revoked']);
      await expectChain();
    });

    it('when the audit row cannot be written nothing is revoked: 503 audit_unavailable; the key is still free after', async () => {
      const before = await tdb.count('token_revocations');
      const body = RevokeTokensInput.parse({ subject: 'eve', role: 'auditor', reason: 'audit down' });
      const repair = await tdb.breakAudit();
      try {
        await expect(revocations[1]!.revoke(body, 'operator:alice', idem('k-down', body))).rejects.toMatchObject({ code: 'audit_unavailable', status: 503 });
        await expect(stores[2]!.audit([{ actor: 'operator:alice', kind: 'token.minted', subject: 'token:x' }])).rejects.toMatchObject({ code: 'audit_unavailable' });
      } finally {
        await repair();
      }
      expect(await tdb.count('token_revocations')).toBe(before);
      expect(await revocations[2]!.find({ ...probe, subject: 'eve', role: 'auditor' })).toBeNull();
      expect((await revocations[2]!.revoke(body, 'operator:alice', idem('k-down', body))).outcome).toBe('revoked');
      await stores[0]!.audit([{ actor: 'operator:alice', kind: 'token.minted', subject: 'token:y', detail: { role: 'operator' } }]);
      expect(await kinds('token:y')).toEqual(['token.minted']);
      await expectChain();
    });

    it('lists revocations oldest first, a page at a time', async () => {
      const all = await revocations[0]!.list({ limit: 100 });
      expect(all.items.map((r) => r.id)).toEqual([...all.items.map((r) => r.id)].sort());
      const page1 = await revocations[1]!.list({ limit: 2 });
      const page2 = await revocations[2]!.list({ limit: 100, after: page1.nextCursor! });
      expect([...page1.items, ...page2.items]).toEqual(all.items);
      expect(page2.nextCursor).toBeNull();
    });

    it('a key registered by 3 replicas at once is one row and one audit row; the others find it current', async () => {
      const key = loadOrCreateSigningKey(tempDir());
      const outcomes = await Promise.all(keys.map((k) => k.register(key)));
      expect(outcomes.sort()).toEqual(['current', 'current', 'registered']);
      expect((await keys[1]!.list(key.kid)).map((k) => k.kid)).toEqual([key.kid]);
      expect(await kinds(key.kid)).toEqual(['token.key_registered']);
      await expectChain();
    });

    it('a rotation retired by 3 replicas at once retires the old key once, with one audit row', async () => {
      const [old] = await stores[0]!.keys();
      const dir = tempDir();
      const next = generateSigningKey(path.join(dir, 'token.key'));
      writeSigningKeyFile(next);
      clock.advance(1000);
      expect(await keys[0]!.register(next, { old_kid: old!.kid, grace_ms: 60_000, reason: 'scheduled', actor: 'operator:alice' })).toBe('registered');
      const results = await Promise.all(keys.map((k) => k.retireAllBut(next, 60_000, 'scheduled', 'operator:alice')));
      expect(results.map((r) => r.retired.length).sort()).toEqual([0, 0, 1]);
      const listed = await keys[2]!.list(next.kid);
      expect(listed.map((k) => [k.kid, k.retired_at !== null, k.current])).toEqual([
        [old!.kid, true, false],
        [next.kid, false, true],
      ]);
      expect(listed[0]!.verify_until).toBe(new Date(clock.now() + 60_000).toISOString());
      expect(await kinds(next.kid)).toEqual(['token.key_registered', 'token.key_rotated']);
      expect((await keys[1]!.lookup(old!.kid))?.verifyUntil).toBe(clock.now() + 60_000);
      await expectChain();
    });

    it('a refused plan writes nothing: a rotation whose key file changed under it', async () => {
      const rows = await tdb.count('gov_activities');
      const stale = generateSigningKey(path.join(tempDir(), 'token.key'));
      writeSigningKeyFile(generateSigningKey(stale.path));
      await expect(keys[1]!.retireAllBut(stale, 0, 'stale', 'operator:alice')).rejects.toThrow(/another rotation ran at the same time/);
      expect(await tdb.count('gov_activities')).toBe(rows);
      expect((await stores[0]!.keys()).filter((k) => k.retiredAt === null)).toHaveLength(1);
      await expectChain();
    });
  });
}

for (const engine of ENGINES) {
  tokenStoreBehaviours(engine, engine.name === 'sqlite' ? (h, clock) => sqliteTokenStore(sqliteOf(h), clock) : (h, clock) => pgTokenStore(pgOf(h), clock));
}
