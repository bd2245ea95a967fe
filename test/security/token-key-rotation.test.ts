/**
 * Rotating the broker's token-signing key with an overlap (`token_keys`): a rotation made by
 * another process (`broker token rotate-key`) applies to a running `broker serve` on its next
 * request; old tokens verify until `verify_until` (to the ms), new ones at once; unknown or
 * retired-past-grace keys are refused; the table keeps every key and retires each only once.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey, writeSigningKeyFile } from '../../src/platform/signing-key.js';
import { openDb } from '../../src/platform/db/open.js';
import { bearer, type Answer } from '../grants/helpers.js';
import { REPO_ROOT, startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { runCli, startServeProcess, type ServeProcess } from '../helpers/process.js';

const UNKNOWN_KEY = /signing key is unknown or retired/;

/** The answer to a token whose key is unknown, retired past its grace, or forged: 401 invalid_token, never the token. */
function expectInvalid(res: Answer, token: string, detail?: RegExp): void {
  expect(res.status).toBe(401);
  expect(res.body.code).toBe('unauthorized');
  expect(res.headers.get('www-authenticate')).toBe('Bearer realm="nanoclaw-broker", error="invalid_token"');
  if (detail) expect(res.body.detail).toMatch(detail);
  expect(JSON.stringify(res.body)).not.toContain(token);
}

const privateD = (dataDir: string) => (JSON.parse(fs.readFileSync(path.join(dataDir, 'token.key'), 'utf8')) as { d: string }).d;
const kidOf = (token: string) => decodeProtectedHeader(token).kid;

describe('token key rotation through a real broker serve and the CLI', () => {
  let dataDir: string;
  let serve: ServeProcess;
  let env: Record<string, string>;
  const at = (url: string) => ({ url }) as TestBroker;
  const get = (token: string) => bearer(at(serve.url), token, 'GET', '/v1/grants');
  const mint = async (subject: string) => {
    const out = await runCli(['token', '--role', 'operator', '--subject', subject, '--ttl', '8h'], env);
    expect(out.code, out.stderr).toBe(0);
    return out.stdout.trim();
  };
  const keys = async () => {
    const out = await runCli(['token', 'keys'], env);
    expect(out.code, out.stderr).toBe(0);
    return JSON.parse(out.stdout).data as { kid: string; created_at: string; retired_at: string | null; verify_until: string | null; current: boolean }[];
  };

  beforeAll(async () => {
    dataDir = tempDir();
    env = { BROKER_DATA_DIR: dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'warn' };
    serve = await startServeProcess({ ...env, BROKER_LOG_LEVEL: 'info' });
  });
  afterAll(async () => {
    serve.child.kill('SIGTERM');
    await serve.exited;
  });

  it('old tokens keep working through the grace, new ones work at once, keys and audit say so (no restart)', async () => {
    const a = await mint('alice');
    expect((await get(a)).status).toBe(200);
    const oldD = privateD(dataDir);

    const out = await runCli(['token', 'rotate-key', '--reason', 'planned yearly rotation'], env);
    expect(out.code, out.stderr).toBe(0);
    const rotation = JSON.parse(out.stdout) as { old_kid: string; new_kid: string; old_verifies_until: string };
    expect(rotation.old_kid).toBe(kidOf(a));
    expect(rotation.new_kid).not.toBe(rotation.old_kid);
    // default grace: the longest token lifetime (30 d)
    expect(Date.parse(rotation.old_verifies_until) - Date.now()).toBeGreaterThan(30 * 86400_000 - 60_000);
    expect(Date.parse(rotation.old_verifies_until) - Date.now()).toBeLessThanOrEqual(30 * 86400_000);
    const newD = privateD(dataDir);
    expect(newD).not.toBe(oldD);
    expect(fs.statSync(path.join(dataDir, 'token.key')).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dataDir).filter((f) => f.includes('.tmp'))).toEqual([]);

    expect((await get(a)).status).toBe(200);
    const b = await mint('bob');
    expect(kidOf(b)).toBe(rotation.new_kid);
    expect((await get(b)).status).toBe(200);

    const rows = await keys();
    expect(rows.map((r) => r.kid)).toEqual([rotation.old_kid, rotation.new_kid]);
    expect(rows[0]).toMatchObject({ current: false, retired_at: expect.any(String), verify_until: rotation.old_verifies_until });
    expect(rows[1]).toMatchObject({ current: true, retired_at: null, verify_until: null });
    const listing = JSON.stringify(rows);
    expect(listing).not.toContain(oldD);
    expect(listing).not.toContain(newD);

    const audit = await bearer(at(serve.url), b, 'GET', '/v1/audit?kind=token.key_rotated');
    expect(audit.status).toBe(200);
    expect(audit.body.data).toHaveLength(1);
    expect(audit.body.data[0]).toMatchObject({ kind: 'token.key_rotated', subject: rotation.new_kid, actor: expect.stringMatching(/^operator:/) });
    expect(audit.body.data[0].detail).toEqual({ old_kid: rotation.old_kid, new_kid: rotation.new_kid, verify_until: rotation.old_verifies_until, reason: 'planned yearly rotation' });
    const everything = JSON.stringify(await bearer(at(serve.url), b, 'GET', '/v1/audit?limit=500'));
    for (const secret of [oldD, newD, a, b]) expect(everything).not.toContain(secret);
  });

  it('--grace 0 (break-glass): the old key\'s tokens are refused on the very next request, new ones work', async () => {
    const a = await mint('carol');
    expect((await get(a)).status).toBe(200);
    const out = await runCli(['token', 'rotate-key', '--reason', 'key file leaked', '--grace', '0'], env);
    expect(out.code, out.stderr).toBe(0);
    const rotation = JSON.parse(out.stdout) as { old_kid: string; new_kid: string; old_verifies_until: string };
    expect(rotation.old_kid).toBe(kidOf(a));
    expectInvalid(await get(a), a, UNKNOWN_KEY);
    const b = await mint('dave');
    expect(kidOf(b)).toBe(rotation.new_kid);
    expect((await get(b)).status).toBe(200);
    const rows = await keys();
    expect(rows.filter((r) => r.current).map((r) => r.kid)).toEqual([rotation.new_kid]);
    expect(rows.find((r) => r.kid === rotation.old_kid)).toMatchObject({ retired_at: rotation.old_verifies_until, verify_until: rotation.old_verifies_until });
  });
});

describe('token key rotation in-process (manual clock)', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startBroker();
  });
  afterAll(() => broker.stop());
  const get = (token: string) => bearer(broker, token, 'GET', '/v1/grants');
  const mint = async (subject: string) => (await broker.deps.tokens.mint('operator', subject, 3600)).token;
  const keyRows = () => broker.deps.db.sqlite.prepare('SELECT * FROM token_keys ORDER BY created_at, kid').all() as Record<string, unknown>[];

  it('an old token works until 1 ms before verify_until and is refused exactly at it', async () => {
    const a = await mint('erin');
    const start = broker.clock.now();
    const rotation = await broker.deps.tokens.rotateSigningKey(60_000, 'test', 'operator:test');
    const until = Date.parse(rotation.old_verifies_until);
    expect(until).toBe(start + 60_000);
    const b = await mint('frank');
    expect(kidOf(b)).toBe(rotation.new_kid);
    try {
      broker.clock.set(until - 1);
      expect((await get(a)).status).toBe(200);
      expect((await get(b)).status).toBe(200);
      broker.clock.set(until);
      expectInvalid(await get(a), a, UNKNOWN_KEY);
      expect((await get(b)).status).toBe(200);
    } finally {
      broker.clock.set(start);
    }
  });

  it('a token whose kid is unknown, or names the current key but is signed by another, is refused', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const now = Math.floor(broker.clock.now() / 1000);
    const sign = (kid: string) =>
      new SignJWT({ role: 'operator', jti: 'x' })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid })
        .setIssuer('nanoclaw-broker')
        .setAudience('nanoclaw-broker')
        .setSubject('mallory')
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .sign(privateKey);
    const unknown = await sign(await calculateJwkThumbprint(await exportJWK(publicKey)));
    expectInvalid(await get(unknown), unknown, UNKNOWN_KEY);
    const impostor = await sign(broker.deps.tokens.kid);
    expectInvalid(await get(impostor), impostor, /not signed by this broker/);
    expect((await get(await mint('grace'))).status).toBe(200);
  });

  it('token_keys rows cannot be deleted, un-retired or extended; kid and public key never change', () => {
    const sqlite = broker.deps.db.sqlite;
    sqlite.prepare("INSERT INTO token_keys (kid, public_jwk, created_at) VALUES ('fake', '{}', 1)").run();
    sqlite.prepare("UPDATE token_keys SET retired_at = 10, verify_until = 20 WHERE kid = 'fake'").run();
    expect(() => sqlite.prepare("DELETE FROM token_keys WHERE kid = 'fake'").run()).toThrow(/never deleted/);
    expect(() => sqlite.prepare('DELETE FROM token_keys').run()).toThrow(/never deleted/);
    expect(() => sqlite.prepare("UPDATE token_keys SET retired_at = NULL, verify_until = NULL WHERE kid = 'fake'").run()).toThrow(/retired once/);
    expect(() => sqlite.prepare("UPDATE token_keys SET verify_until = 99 WHERE kid = 'fake'").run()).toThrow(/retired once/);
    expect(() => sqlite.prepare("UPDATE token_keys SET retired_at = 11 WHERE kid = 'fake'").run()).toThrow(/retired once/);
    const current = broker.deps.tokens.kid;
    expect(() => sqlite.prepare("UPDATE token_keys SET public_jwk = '{}' WHERE kid = ?").run(current)).toThrow(/retired once/);
    expect(() => sqlite.prepare("UPDATE token_keys SET kid = 'other' WHERE kid = ?").run(current)).toThrow(/retired once/);
    expect(() => sqlite.prepare('UPDATE token_keys SET retired_at = 5 WHERE kid = ?').run(current)).toThrow(/CHECK/);
    expect(() => sqlite.prepare("UPDATE token_keys SET rotation = '{}' WHERE kid = ?").run(current)).toThrow(/retired once/);
    expect(keyRows().find((r) => r.kid === 'fake')).toMatchObject({ retired_at: 10, verify_until: 20 });
    expect(keyRows().find((r) => r.kid === current)).toMatchObject({ retired_at: null, verify_until: null });
  });

  it('the key lookup is one primary-key SELECT', () => {
    const plan = broker.deps.db.sqlite.prepare("EXPLAIN QUERY PLAN SELECT public_jwk, verify_until FROM token_keys WHERE kid = 'a'").all() as { detail: string }[];
    expect(plan.map((p) => p.detail).join('\n')).toMatch(/SEARCH token_keys USING INDEX sqlite_autoindex_token_keys_1 \(kid=\?\)/);
  });

  it('a database error while looking up the key answers 503 service_unavailable (fail closed)', async () => {
    const other = await startBroker({ dataDir: tempDir(), listen: true });
    try {
      const { token } = await other.deps.tokens.mint('operator', 'hank', 3600);
      expect((await bearer(other, token, 'GET', '/v1/grants')).status).toBe(200);
      other.deps.db.sqlite.exec('ALTER TABLE token_keys RENAME TO token_keys_gone');
      const res = await bearer(other, token, 'GET', '/v1/grants');
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('service_unavailable');
      expect(res.body.detail).toMatch(/could not check token signing keys/);
    } finally {
      await other.stop();
    }
  });

  it('bad rotate-key input exits 1 with the reason and changes nothing', async () => {
    const env = { BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'warn' };
    const file = path.join(broker.dataDir, 'token.key');
    const bytes = fs.readFileSync(file);
    const rows = keyRows();
    const audits = () => broker.deps.db.sqlite.prepare("SELECT count(*) AS n FROM gov_activities WHERE kind = 'token.key_rotated'").get();
    const auditsBefore = audits();
    for (const [args, message] of [
      [['token', 'rotate-key'], /--reason: a reason is required/],
      [['token', 'rotate-key', '--reason', '   '], /--reason: a reason is required/],
      [['token', 'rotate-key', '--reason', 'r', '--grace', '-1'], /--grace: "-1" is not a duration/],
      [['token', 'rotate-key', '--reason', 'r', '--grace', 'banana'], /--grace: "banana" is not a duration/],
      [['token', 'rotate-key', '--reason', 'r', '--grace', '31d'], /--grace: at most 30d/],
    ] as const) {
      const out = await runCli([...args], env);
      expect(out.code, args.join(' ')).toBe(1);
      expect(out.stdout).toBe('');
      expect(out.stderr).toMatch(message);
    }
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
    expect(keyRows()).toEqual(rows);
    expect(audits()).toEqual(auditsBefore);
  });
});

describe('token.key_registered: every new signing key is audited', () => {
  it('at first start by system with {kid}; by the rotating operator with the rotation it belongs to', async () => {
    const broker = await startBroker();
    try {
      const registered = () =>
        (broker.deps.db.sqlite.prepare("SELECT actor, subject, detail FROM gov_activities WHERE kind = 'token.key_registered' ORDER BY seq").all() as { actor: string; subject: string; detail: string }[]).map((r) => ({ ...r, detail: JSON.parse(r.detail) as unknown }));
      const first = broker.deps.tokens.kid;
      expect(registered()).toEqual([{ actor: 'system', subject: first, detail: { kid: first } }]);
      const rotation = await broker.deps.tokens.rotateSigningKey(60_000, 'yearly', 'operator:olga');
      expect(registered()[1]).toEqual({ actor: 'operator:olga', subject: rotation.new_kid, detail: { kid: rotation.new_kid, old_kid: first, grace_ms: 60_000, reason: 'yearly', actor: 'operator:olga' } });
      expect(JSON.stringify(registered())).not.toContain(privateD(broker.dataDir));
    } finally {
      await broker.stop();
    }
  });
});

describe('a rotation interrupted after token.key was replaced', () => {
  const T0 = Date.UTC(2026, 10, 1);
  const GRACE = 2 * 3600_000;
  const rows = (b: TestBroker) => b.deps.db.sqlite.prepare('SELECT kid, created_at, retired_at, verify_until FROM token_keys ORDER BY created_at, kid').all() as { kid: string; created_at: number; retired_at: number | null; verify_until: number | null }[];
  const rotatedAudit = (b: TestBroker) => b.deps.db.sqlite.prepare("SELECT actor, subject, detail FROM gov_activities WHERE kind = 'token.key_rotated'").all() as { actor: string; subject: string; detail: string }[];

  it('is finished by the next start with the grace it asked, counted from the rotation; audited once', async () => {
    const dataDir = tempDir();
    const first = await startBroker({ dataDir, startMs: T0 });
    const old = (await first.deps.tokens.mint('operator', 'ivy', 3 * 3600)).token;
    const oldKid = first.deps.tokens.kid;
    // rotateSigningKey's steps 1 and 2 a second later, then the process dies before step 3 retires the old key.
    first.clock.set(T0 + 1000);
    const next = generateSigningKey(path.join(dataDir, 'token.key'));
    await first.deps.tokens.keys.register(next, { old_kid: oldKid, grace_ms: GRACE, reason: 'yearly', actor: 'operator:olga' });
    writeSigningKeyFile(next);
    await first.stop();

    const again = await startBroker({ dataDir, startMs: T0 + 60_000 });
    try {
      expect(again.deps.tokens.kid).toBe(next.kid);
      expect(rows(again).find((r) => r.kid === oldKid)).toEqual({ kid: oldKid, created_at: T0, retired_at: T0 + 60_000, verify_until: T0 + 1000 + GRACE });
      expect(rows(again).find((r) => r.kid === next.kid)).toMatchObject({ retired_at: null, verify_until: null });
      const audit = rotatedAudit(again);
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ actor: 'system', subject: next.kid });
      expect(JSON.parse(audit[0]!.detail)).toEqual({ old_kid: oldKid, new_kid: next.kid, verify_until: new Date(T0 + 1000 + GRACE).toISOString(), reason: expect.stringMatching(/^yearly \(finished at start-up/), rotated_by: 'operator:olga' });
      expect(again.logs.join('')).toContain('finished an interrupted');
      again.clock.set(T0 + 1000 + GRACE - 1);
      expect((await bearer(again, old, 'GET', '/v1/grants')).status).toBe(200);
      again.clock.set(T0 + 1000 + GRACE);
      expectInvalid(await bearer(again, old, 'GET', '/v1/grants'), old, UNKNOWN_KEY);
    } finally {
      await again.stop();
    }

    const third = await startBroker({ dataDir, startMs: T0 + 120_000 });
    try {
      expect(rotatedAudit(third)).toHaveLength(1);
    } finally {
      await third.stop();
    }
  });

  it('leaves a rotation still in progress alone: a key registered after token.key\'s stays current', async () => {
    const dataDir = tempDir();
    const first = await startBroker({ dataDir, startMs: T0 });
    const current = first.deps.tokens.kid;
    // Another process's rotation at step 1: its key is registered, token.key not yet replaced.
    const pending = generateSigningKey(path.join(dataDir, 'token.key'));
    first.clock.set(T0 + 1000);
    await first.deps.tokens.keys.register(pending, { old_kid: current, grace_ms: GRACE, reason: 'in progress', actor: 'operator:olga' });
    await first.stop();

    const again = await startBroker({ dataDir, startMs: T0 + 2000 });
    try {
      expect(again.deps.tokens.kid).toBe(current);
      expect(rows(again).map((r) => [r.kid, r.retired_at])).toEqual([
        [current, null],
        [pending.kid, null],
      ]);
      expect(rotatedAudit(again)).toEqual([]);
    } finally {
      await again.stop();
    }
  });
});

describe('upgrade: a data dir whose token.key predates token_keys', () => {
  it('registers the key on the next start, and its old tokens keep working', async () => {
    const dataDir = tempDir();
    const first = await startBroker({ dataDir });
    const token = (await first.deps.tokens.mint('operator', 'ivy', 3600)).token;
    const kid = first.deps.tokens.kid;
    await first.stop();

    const db = openDb({ path: path.join(dataDir, 'broker.db') });
    try {
      const trigger = (db.sqlite.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'token_keys_no_delete'").get() as { sql: string }).sql;
      db.sqlite.exec('DROP TRIGGER token_keys_no_delete; DELETE FROM token_keys;');
      db.sqlite.exec(trigger);
      expect(db.sqlite.prepare('SELECT count(*) AS n FROM token_keys').get()).toEqual({ n: 0 });
    } finally {
      db.sqlite.close();
    }

    const again = await startBroker({ dataDir });
    try {
      expect(again.deps.tokens.kid).toBe(kid);
      expect(again.deps.db.sqlite.prepare('SELECT kid, retired_at, verify_until FROM token_keys').all()).toEqual([{ kid, retired_at: null, verify_until: null }]);
      expect((await bearer(again, token, 'GET', '/v1/grants')).status).toBe(200);
    } finally {
      await again.stop();
    }
  });
});

describe('break-glass: token.key replaced by hand', () => {
  it('the next start retires every earlier key at once, audited; their tokens are refused, new ones work', async () => {
    const dataDir = tempDir();
    const first = await startBroker({ dataDir });
    const old = (await first.deps.tokens.mint('operator', 'ivy', 3600)).token;
    const oldKid = first.deps.tokens.kid;
    expect((await bearer(first, old, 'GET', '/v1/grants')).status).toBe(200);
    await first.stop();

    const { privateKey } = generateKeyPairSync('ed25519');
    fs.writeFileSync(path.join(dataDir, 'token.key'), `${JSON.stringify(privateKey.export({ format: 'jwk' }))}\n`, { mode: 0o600 });

    const again = await startBroker({ dataDir });
    try {
      const newKid = again.deps.tokens.kid;
      expect(newKid).not.toBe(oldKid);
      expectInvalid(await bearer(again, old, 'GET', '/v1/grants'), old, UNKNOWN_KEY);
      const fresh = (await again.deps.tokens.mint('operator', 'ivy', 3600)).token;
      expect((await bearer(again, fresh, 'GET', '/v1/grants')).status).toBe(200);
      const rows = again.deps.db.sqlite.prepare('SELECT kid, retired_at, verify_until FROM token_keys ORDER BY created_at, kid').all() as { kid: string; retired_at: number | null; verify_until: number | null }[];
      const oldRow = rows.find((r) => r.kid === oldKid)!;
      expect(oldRow.retired_at).not.toBeNull();
      expect(oldRow.verify_until).toBe(oldRow.retired_at);
      expect(rows.find((r) => r.kid === newKid)).toMatchObject({ retired_at: null, verify_until: null });
      const audit = again.deps.db.sqlite.prepare("SELECT actor, subject, detail FROM gov_activities WHERE kind = 'token.key_rotated'").all() as { actor: string; subject: string; detail: string }[];
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ actor: 'system', subject: newKid });
      expect(JSON.parse(audit[0]!.detail)).toMatchObject({ old_kid: oldKid, new_kid: newKid, reason: expect.stringContaining('replaced outside') });
    } finally {
      await again.stop();
    }
  });
});
