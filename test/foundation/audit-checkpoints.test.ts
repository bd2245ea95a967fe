/**
 * Signed audit checkpoints through real processes: `broker serve` signs the chain's head at
 * start-up, after every N rows, after M seconds and on SIGTERM into `BROKER_CHECKPOINT_DIR`; rows
 * are written by real `broker secrets rotate` processes; the SQLite file is then tampered with
 * better-sqlite3 (triggers dropped, as an intruder would), and the real `broker audit verify`
 * (database and `--file --checkpoints`) must catch truncation and a rewrite-and-rehash behind the
 * newest checkpoint, which the hash chain alone cannot.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENESIS_HASH, storedActivityHash, type StoredActivity } from '../../src/platform/audit/chain.js';
import { tempDir } from '../helpers/harness.js';
import { runCli, startServeProcess, type ServeProcess } from '../helpers/process.js';

const CHECKPOINT = /^checkpoint-(\d{16})-[0-9a-f]{16}\.json$/;

/** The seqs of the checkpoint files in `dir` (none when it does not exist). */
function checkpointSeqs(dir: string): number[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((n) => CHECKPOINT.exec(n)?.[1])
    .filter((s): s is string => s !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** The newest row's seq, read from the database file (WAL: readable while the broker writes). */
function headSeq(dataDir: string): number {
  const db = new Database(path.join(dataDir, 'broker.db'), { readonly: true });
  try {
    return (db.prepare('SELECT max(seq) AS seq FROM gov_activities').get() as { seq: number }).seq;
  } finally {
    db.close();
  }
}

/** Polls `cond` every 50 ms until it holds; fails naming `what` after `timeoutMs` (a bound on a hang, not a timing assertion). */
async function until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Appends one audit row through a real CLI process (`key.rotated`). */
async function addRow(env: Record<string, string>): Promise<void> {
  const res = await runCli(['secrets', 'rotate', '--group', 'security'], env);
  expect(res.code, res.stderr).toBe(0);
}

/** A copy of a stopped broker's data directory (database, keys, checkpoints) to tamper with. */
function copyOf(dataDir: string): { dir: string; env: Record<string, string> } {
  const dir = tempDir();
  fs.cpSync(dataDir, dir, { recursive: true });
  return { dir, env: { BROKER_DATA_DIR: dir } };
}

/** Opens a copy's database with both append-only triggers dropped. */
function intrude(dir: string): Database.Database {
  const db = new Database(path.join(dir, 'broker.db'));
  db.exec('DROP TRIGGER gov_activities_no_update; DROP TRIGGER gov_activities_no_delete');
  return db;
}

describe('broker serve signs checkpoints of the audit chain', () => {
  const dataDir = path.join(tempDir(), 'data');
  const checkpoints = path.join(dataDir, 'checkpoints');
  // An hour's interval: only the row count, the start and the stop write checkpoints here.
  const env = { BROKER_DATA_DIR: dataDir, BROKER_CHECKPOINT_EVERY_ROWS: '2', BROKER_CHECKPOINT_INTERVAL_S: '3600' };
  let serve: ServeProcess;
  let head: number;

  beforeAll(async () => {
    serve = await startServeProcess(env);
  });
  afterAll(() => {
    if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
  });

  it('at start-up, after every N rows, and once more on SIGTERM', async () => {
    const start = headSeq(dataDir);
    await until(() => checkpointSeqs(checkpoints).includes(start), `the start-up checkpoint at seq ${start}`);
    await addRow(env);
    await addRow(env);
    await until(() => checkpointSeqs(checkpoints).includes(start + 2), `the checkpoint after 2 rows (seq ${start + 2})`);
    await addRow(env);
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
    head = headSeq(dataDir);
    expect(head).toBe(start + 3);
    expect(checkpointSeqs(checkpoints)).toEqual([start, start + 2, head]);

    const keyFiles = fs.readdirSync(checkpoints).filter((n) => n.endsWith('.jwk'));
    expect(keyFiles).toHaveLength(1);
    const jwk = JSON.parse(fs.readFileSync(path.join(checkpoints, keyFiles[0]!), 'utf8')) as Record<string, unknown>;
    expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
    expect(jwk).not.toHaveProperty('d');
    expect(fs.statSync(path.join(dataDir, 'checkpoint.key')).mode & 0o777).toBe(0o600);
  });

  it('audit verify checks the chain against them and says how many rows the newest covers', async () => {
    const res = await runCli(['audit', 'verify'], { BROKER_DATA_DIR: dataDir });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^audit chain ok: ${head} rows verified; newest checkpoint seq ${head} \\(signed .+ ago, key [A-Za-z0-9_-]{43}\\) covers ${head} rows; head ${head}:[0-9a-f]{64}\\n$`));
  });

  it('detects the newest rows removed behind the newest checkpoint', async () => {
    const { dir, env: copyEnv } = copyOf(dataDir);
    const db = intrude(dir);
    db.prepare('DELETE FROM gov_activities WHERE seq > ?').run(head - 2);
    db.close();
    // The chain alone is whole: without the checkpoints the truncation passes.
    const empty = tempDir();
    expect((await runCli(['audit', 'verify', '--checkpoints', empty], copyEnv)).stdout).toContain(`audit chain ok: ${head - 2} rows verified; no signed checkpoint in ${empty}`);

    const res = await runCli(['audit', 'verify'], copyEnv);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`audit chain broken at seq ${head - 1}: the rows end at seq ${head - 2}, but a checkpoint signed at \\S+ covers ${head} rows: rows ${head - 1}–${head} were removed`));
  });

  it('detects rows rewritten and rehashed from row k up to the head', async () => {
    const { dir, env: copyEnv } = copyOf(dataDir);
    const db = intrude(dir);
    const k = 2;
    db.prepare("UPDATE gov_activities SET actor = 'mallory' WHERE seq = ?").run(k);
    const rows = db.prepare('SELECT seq, ts, actor, kind, subject, detail, prev_hash AS prevHash, hash FROM gov_activities ORDER BY seq').all() as StoredActivity[];
    let prev = GENESIS_HASH;
    for (const r of rows) {
      const hash = storedActivityHash(prev, r);
      db.prepare('UPDATE gov_activities SET prev_hash = ?, hash = ? WHERE seq = ?').run(prev, hash, r.seq);
      prev = hash;
    }
    db.close();
    const empty = tempDir();
    expect((await runCli(['audit', 'verify', '--checkpoints', empty], copyEnv)).code).toBe(0);

    const first = checkpointSeqs(path.join(dir, 'checkpoints'))[0]!;
    const res = await runCli(['audit', 'verify'], copyEnv);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`audit chain broken at seq ${first}: hash differs from the checkpoint signed at \\S+ \\(${first}:[0-9a-f]{64}\\): the rows up to it were rewritten`));
  });

  it('refuses a checkpoint whose signature does not verify (a payload swapped under a real signature)', async () => {
    const { dir, env: copyEnv } = copyOf(dataDir);
    const cpDir = path.join(dir, 'checkpoints');
    const name = fs.readdirSync(cpDir).find((n) => CHECKPOINT.exec(n)?.[1] === String(head).padStart(16, '0'))!;
    const file = JSON.parse(fs.readFileSync(path.join(cpDir, name), 'utf8')) as { jws: string; kid: string };
    const [header, , signature] = file.jws.split('.');
    const forged = { seq: head, hash: 'a'.repeat(64), ts: new Date().toISOString() };
    const jws = `${header}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${signature}`;
    fs.writeFileSync(path.join(cpDir, `checkpoint-${String(head).padStart(16, '0')}-${'a'.repeat(16)}.json`), JSON.stringify({ ...forged, kid: file.kid, jws }));
    const res = await runCli(['audit', 'verify'], copyEnv);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/audit checkpoint does not verify: .*checkpoint-\d{16}-a{16}\.json: the signature does not verify with key/);
  });

  it('verify --file --checkpoints checks an export against them off the host', async () => {
    const out = path.join(tempDir(), 'trail.jsonl');
    expect((await runCli(['audit', 'export', '--out', out], { BROKER_DATA_DIR: dataDir })).code).toBe(0);
    const elsewhere = { BROKER_DATA_DIR: path.join(tempDir(), 'none') };
    const ok = await runCli(['audit', 'verify', '--file', out, '--checkpoints', checkpoints], elsewhere);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`audit export ok: ${head} rows verified, seq 1–${head}, starting from the genesis hash; newest checkpoint seq ${head} \\(signed .+\\) covers ${head} rows; head`));

    const cut = path.join(tempDir(), 'cut.jsonl');
    fs.writeFileSync(cut, fs.readFileSync(out, 'utf8').trimEnd().split('\n').slice(0, head - 1).join('\n') + '\n');
    expect((await runCli(['audit', 'verify', '--file', cut], elsewhere)).code).toBe(0);
    const res = await runCli(['audit', 'verify', '--file', cut, '--checkpoints', checkpoints], elsewhere);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`covers ${head} rows: rows ${head}–${head} were removed`);

    const missing = await runCli(['audit', 'verify', '--file', out, '--checkpoints', path.join(tempDir(), 'nope')], elsewhere);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read the checkpoints in .*nope/);
  });
});

describe('broker serve signs a checkpoint after BROKER_CHECKPOINT_INTERVAL_S when rows were added', () => {
  it('covers a new row within the interval, without waiting for N rows or a stop', async () => {
    const dataDir = path.join(tempDir(), 'data');
    const checkpoints = path.join(dataDir, 'checkpoints');
    const env = { BROKER_DATA_DIR: dataDir, BROKER_CHECKPOINT_EVERY_ROWS: '1000', BROKER_CHECKPOINT_INTERVAL_S: '1' };
    const serve = await startServeProcess(env);
    try {
      const start = headSeq(dataDir);
      await until(() => checkpointSeqs(checkpoints).includes(start), 'the start-up checkpoint');
      await addRow(env);
      await until(() => checkpointSeqs(checkpoints).includes(start + 1), `the interval checkpoint at seq ${start + 1}`);
    } finally {
      serve.child.kill('SIGKILL');
      await serve.exited;
    }
    const res = await runCli(['audit', 'verify'], { BROKER_DATA_DIR: dataDir });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`covers ${headSeq(dataDir)} rows`);
  });
});
