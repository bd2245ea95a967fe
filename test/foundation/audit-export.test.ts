/**
 * The auditor's tamper evidence through the real `broker` process: `audit head` (an anchor to keep
 * off the host), `audit export` (JSON Lines) and `audit verify --file` (checked without the
 * database), and `--anchor` on both verifications. The trail is a real SQLite file written by the
 * real audit code.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { activityHash, GENESIS_HASH, verifyChain } from '../../src/platform/audit/chain.js';
import { appendActivity } from '../../src/platform/audit/trail.js';
import { immediate } from '../../src/platform/db/open.js';
import { loadConfig } from '../../src/platform/config.js';
import { closeDeps, createDeps, sqliteDeps } from '../../src/app/deps.js';
import { createLogger } from '../../src/platform/log.js';
import { REPO_ROOT, startBroker, tempDir } from '../helpers/harness.js';
import { BIN, runCli } from '../helpers/process.js';

interface Line {
  seq: number;
  hash: string;
  prev_hash: string;
  detail: Record<string, unknown>;
}

/** A data directory whose trail holds the start-up rows plus `extra` rows written by the audit code. */
async function trail(extra: number): Promise<{ env: Record<string, string>; dataDir: string }> {
  const dataDir = tempDir();
  const env = { BROKER_DATA_DIR: dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies') };
  const deps = sqliteDeps(await createDeps(loadConfig(env), { logger: createLogger('silent') }));
  immediate(deps.db, () => {
    for (let i = 0; i < extra; i++) appendActivity(deps.db, { actor: 'operator:alice', kind: 'grant.created', subject: `grant:g${i}`, detail: { n: i, note: 'é ✓ "quoted"' } }, Date.UTC(2026, 0, 1, 0, 0, i));
  });
  await closeDeps(deps);
  return { env, dataDir };
}

/** Runs a bash command line (with the given environment over process.env) to completion. */
function runShell(command: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', command], { env: { ...process.env, ...env }, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

const readLines = (file: string): Line[] =>
  fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);
const writeLines = (file: string, lines: unknown[]): void => fs.writeFileSync(file, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));

describe('broker audit export and verify --file', () => {
  let env: Record<string, string>;
  let dataDir: string;
  let file: string;
  let lines: Line[];

  beforeAll(async () => {
    ({ env, dataDir } = await trail(20));
    file = path.join(tempDir(), 'audit.jsonl');
    const res = await runCli(['audit', 'export', '--out', file], env);
    expect(res.code).toBe(0);
    lines = readLines(file);
  });

  it('writes every row in seq order, in the wire shape of GET /v1/audit, to a 0600 file', () => {
    const db = new Database(path.join(dataDir, 'broker.db'), { readonly: true });
    const count = (db.prepare('SELECT COUNT(*) AS n FROM gov_activities').get() as { n: number }).n;
    db.close();
    expect(lines).toHaveLength(count);
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(Object.keys(lines[0]!)).toEqual(['seq', 'ts', 'actor', 'kind', 'subject', 'detail', 'prev_hash', 'hash']);
    expect(lines.at(-1)!.detail).toEqual({ n: 19, note: 'é ✓ "quoted"' });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('verifies the file without the database, and audit head names its last row', async () => {
    const ok = await runCli(['audit', 'verify', '--file', file], { BROKER_DATA_DIR: path.join(tempDir(), 'none') });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`audit export ok: ${lines.length} rows verified, seq 1–${lines.length}, starting from the genesis hash`);
    const head = JSON.parse((await runCli(['audit', 'head'], env)).stdout) as { seq: number; hash: string; anchor: string };
    expect(head).toMatchObject({ seq: lines.length, hash: lines.at(-1)!.hash, anchor: `${lines.length}:${lines.at(-1)!.hash}` });
    expect(ok.stdout).toContain(`head ${head.anchor}`);
  });

  it('exports from a seq on, and the stretch verifies against an anchor recorded earlier', async () => {
    const anchor = `${lines[9]!.seq}:${lines[9]!.hash}`;
    const part = path.join(tempDir(), 'part.jsonl');
    expect((await runCli(['audit', 'export', '--since', '5', '--out', part], env)).code).toBe(0);
    expect(readLines(part)[0]!.seq).toBe(6);
    const ok = await runCli(['audit', 'verify', '--file', part, '--anchor', anchor], env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`starting from prev_hash ${lines[4]!.hash} (seq 5's hash), anchor 10 matched`);
  });

  it.each([
    ['a changed detail', (ls: Line[]) => ls.map((l) => (l.seq === 7 ? { ...l, detail: { ...l.detail, n: 99 } } : l)), /line 7 \(seq 7\): hash does not match the row \(6 rows/],
    ['a removed row', (ls: Line[]) => ls.filter((l) => l.seq !== 7), /line 7 \(seq 8\): expected seq 7/],
    ['rows swapped', (ls: Line[]) => [...ls.slice(0, 6), ls[7], ls[6], ...ls.slice(8)], /line 7 \(seq 8\): expected seq 7/],
    ['a row whose hash was replaced', (ls: Line[]) => ls.map((l) => (l.seq === 7 ? { ...l, hash: 'f'.repeat(64) } : l)), /line 7 \(seq 7\): hash does not match/],
    ['a first row that does not start from genesis', (ls: Line[]) => [{ ...ls[0], prev_hash: 'a'.repeat(64) }, ...ls.slice(1)], /line 1 \(seq 1\): seq 1 does not start from the genesis hash/],
  ])('fails at the first broken line on %s, exit 1', async (_name, edit, message) => {
    const bad = path.join(tempDir(), 'bad.jsonl');
    writeLines(bad, edit(lines));
    const res = await runCli(['audit', 'verify', '--file', bad], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(message);
  });

  it('names a line that is not JSON or not an audit row, and refuses a missing file, without crashing', async () => {
    const bad = path.join(tempDir(), 'bad.jsonl');
    fs.writeFileSync(bad, `${JSON.stringify(lines[0])}\n{"seq": 2, "ts"\n`);
    const notJson = await runCli(['audit', 'verify', '--file', bad], env);
    expect(notJson.code).toBe(1);
    expect(notJson.stderr).toContain('line 2: not JSON');
    writeLines(bad, [lines[0], { ...lines[1], hash: 'xyz' }]);
    const notRow = await runCli(['audit', 'verify', '--file', bad], env);
    expect(notRow.stderr).toContain('line 2: not an audit row: hash:');
    const missing = await runCli(['audit', 'verify', '--file', path.join(tempDir(), 'nope.jsonl')], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read .*nope\.jsonl/);
    expect(`${notJson.stderr}${notRow.stderr}${missing.stderr}`).not.toMatch(/\n\s+at /);
  });
});

describe('broker audit export into a pipe whose reader stops early', () => {
  it('`| head -n 1` gets the first row and the export exits 0 without an EPIPE error', async () => {
    const { env } = await trail(3000); // ~1 MB of lines: far more than a pipe buffer holds
    const res = await runShell(`set -o pipefail; "${process.execPath}" "${BIN}" audit export | head -n 1`, env);
    expect(res.stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(res.code).toBe(0);
    expect((JSON.parse(res.stdout) as Line).seq).toBe(1);
  });
});

describe('broker audit verify --anchor on the database', () => {
  it('matches an anchor after more rows were appended, and fails once that row was rewritten', async () => {
    const { env, dataDir } = await trail(5);
    const head = JSON.parse((await runCli(['audit', 'head'], env)).stdout) as { seq: number; anchor: string };
    await runCli(['secrets', 'rotate', '--group', 'security'], env);
    const later = await runCli(['audit', 'verify', '--anchor', head.anchor], env);
    expect(later.code).toBe(0);
    expect(later.stdout).toContain(`${head.seq + 1} rows verified, anchor ${head.seq} matched`);

    const beyond = await runCli(['audit', 'verify', '--anchor', `${head.seq + 50}:${'a'.repeat(64)}`], env);
    expect(beyond.code).toBe(1);
    expect(beyond.stderr).toContain(`do not include the anchor's seq ${head.seq + 50}`);
    const malformed = await runCli(['audit', 'verify', '--anchor', 'latest'], env);
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toContain('--anchor must be <seq>:<sha256 hex>');

    // Rewrite the whole chain from seq 2 on (triggers dropped), so it is internally consistent
    // again: only the anchor kept off the host shows that history changed.
    const db = new Database(path.join(dataDir, 'broker.db'));
    db.exec('DROP TRIGGER gov_activities_no_update');
    db.prepare("UPDATE gov_activities SET actor = 'mallory' WHERE seq = 2").run();
    db.close();
    const rechain = sqliteDeps(await createDeps(loadConfig(env), { logger: createLogger('silent') }));
    const rows = rechain.db.sqlite.prepare('SELECT seq, ts, actor, kind, subject, detail FROM gov_activities ORDER BY seq').all() as { seq: number; ts: string; actor: string; kind: string; subject: string; detail: string }[];
    let prev = GENESIS_HASH;
    for (const r of rows) {
      const hash = activityHash(prev, { ...r, detail: JSON.parse(r.detail) as Record<string, unknown> });
      rechain.db.sqlite.prepare('UPDATE gov_activities SET prev_hash = ?, hash = ? WHERE seq = ?').run(prev, hash, r.seq);
      prev = hash;
    }
    expect(verifyChain(rechain.db).ok).toBe(true);
    await closeDeps(rechain);

    expect((await runCli(['audit', 'verify'], env)).code).toBe(0);
    const caught = await runCli(['audit', 'verify', '--anchor', head.anchor], env);
    expect(caught.code).toBe(1);
    expect(caught.stderr).toContain(`broken at seq ${head.seq}: hash differs from the anchor ${head.anchor}`);
  });
});

describe('an auditor\'s own export through GET /v1/audit', () => {
  it('pages of the unfiltered trail, one row per line, verify with broker audit verify --file', async () => {
    const broker = await startBroker();
    try {
      immediate(broker.deps.db, () => {
        for (let i = 0; i < 12; i++) appendActivity(broker.deps.db, { actor: 'operator:alice', kind: 'grant.created', subject: `grant:g${i}`, detail: { n: i } }, Date.UTC(2026, 0, 1, 0, 0, i));
      });
      const { token } = await broker.deps.tokens.mint('auditor', 'audrey', 600);
      const rows: unknown[] = [];
      for (let since = 0, more = true; more; ) {
        const res = await fetch(`${broker.url}/v1/audit?limit=5&since=${since}`, { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(200);
        const page = (await res.json()) as { data: { seq: number }[]; has_more: boolean; next_since: number | null };
        rows.push(...page.data);
        (more = page.has_more), (since = page.next_since ?? since);
      }
      const file = path.join(tempDir(), 'api.jsonl');
      writeLines(file, rows);
      const last = rows.at(-1) as { seq: number; hash: string };
      const res = await runCli(['audit', 'verify', '--file', file, '--anchor', `${last.seq}:${last.hash}`], { BROKER_DATA_DIR: path.join(tempDir(), 'none') });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain(`audit export ok: ${rows.length} rows verified, seq 1–${last.seq}, starting from the genesis hash, anchor ${last.seq} matched`);
    } finally {
      await broker.stop();
    }
  });
});
