/**
 * The chain covers exactly the bytes stored: a `call.claimed` row written by a real broker (real
 * server, real SQLite file) is edited with better-sqlite3 so that it parses to the same object (a
 * duplicate key in front, reordered keys, whitespace) and so hashes the same, yet reads differently
 * to SQLite's `json_extract` or to a person. The real `broker audit verify` process, on the database
 * and on an export (`--file`), must name the row's seq; the untouched trail passes.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import canonicalize from 'canonicalize';
import { beforeAll, describe, expect, it } from 'vitest';
import { startBroker, tempDir } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';
import { call, grant } from '../calls/helpers.js';
import { testProvider } from '../calls/provider.js';

/** A data directory whose trail a real broker wrote, with one succeeded `test.read` call; `seq` is its `call.claimed` row. */
let dataDir: string;
let seq: number;
let original: string;

beforeAll(async () => {
  dataDir = tempDir();
  const tp = testProvider();
  const broker = await startBroker({ dataDir, providers: [tp.provider] });
  try {
    await grant(broker, { level: 1 });
    const key = randomUUID();
    expect((await call(broker, 'developer', { action: 'test.read', params: { resource: 'acme/api' } }, key)).status).toBe(200);
    const row = broker.deps.db.sqlite.prepare("SELECT seq, detail FROM gov_activities WHERE kind = 'call.claimed' AND subject = ?").get(`call:developer:${key}`) as { seq: number; detail: string };
    ({ seq, detail: original } = row);
  } finally {
    await broker.stop();
  }
});

/** A copy of the data directory whose `call.claimed` row's detail is replaced by `edit(detail)`, triggers dropped as an intruder would. */
function tampered(edit: (detail: string) => string): { env: Record<string, string>; db: string } {
  const copy = tempDir();
  fs.cpSync(dataDir, copy, { recursive: true });
  const file = path.join(copy, 'broker.db');
  const db = new Database(file);
  db.exec('DROP TRIGGER gov_activities_no_update');
  db.prepare('UPDATE gov_activities SET detail = ? WHERE seq = ?').run(edit(original), seq);
  db.close();
  return { env: { BROKER_DATA_DIR: copy }, db: file };
}

const reordered = (detail: string) => JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(detail) as Record<string, unknown>).reverse()));

describe('audit verify checks the stored bytes of each detail', () => {
  it('stores every detail as its RFC 8785 canonical text, and the untouched trail verifies', async () => {
    const db = new Database(path.join(dataDir, 'broker.db'), { readonly: true });
    const rows = db.prepare('SELECT detail FROM gov_activities').all() as { detail: string }[];
    db.close();
    for (const r of rows) expect(r.detail).toBe(canonicalize(JSON.parse(r.detail)));
    expect(JSON.parse(original)).toMatchObject({ action: 'test.read' });
    const res = await runCli(['audit', 'verify'], { BROKER_DATA_DIR: dataDir });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`audit chain ok: ${rows.length} rows verified`));
  });

  it.each([
    ['a duplicate key prepended ("action":"github.merge_pull")', (d: string) => `{"action":"github.merge_pull",${d.slice(1)}`],
    ['reordered keys', reordered],
    ['whitespace added', (d: string) => JSON.stringify(JSON.parse(d), null, 1)],
    ['one space after the first colon', (d: string) => d.replace(':', ': ')],
  ])('fails naming the seq on %s, though the row parses to the same object', async (_name, edit) => {
    expect(JSON.parse(edit(original))).toEqual(JSON.parse(original));
    const { env } = tampered(edit);
    const res = await runCli(['audit', 'verify'], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`audit chain broken at seq ${seq}: detail is not stored in its canonical form (RFC 8785)`);

    // The export carries the stored bytes, so `verify --file` catches it too, on any machine (a
    // detail with raw newlines spreads over several lines, which are then not JSON).
    const out = path.join(tempDir(), 'trail.jsonl');
    expect((await runCli(['audit', 'export', '--out', out], env)).code).toBe(0);
    const file = await runCli(['audit', 'verify', '--file', out], env);
    expect(file.code).toBe(1);
    expect(file.stderr).toMatch(new RegExp(`audit export broken at line ${seq}( \\(seq ${seq}\\): detail is not stored in its canonical form|: not JSON)`));
    expect(file.stderr).toContain(`(${seq - 1} rows verified before it)`);
  });

  it('the duplicate key is what SQLite reads, while JSON.parse reads the original', () => {
    const { db: file } = tampered((d) => `{"action":"github.merge_pull",${d.slice(1)}`);
    const db = new Database(file, { readonly: true });
    const row = db.prepare("SELECT json_extract(detail, '$.action') AS action, detail FROM gov_activities WHERE seq = ?").get(seq) as { action: string; detail: string };
    db.close();
    expect(row.action).toBe('github.merge_pull');
    expect((JSON.parse(row.detail) as { action: string }).action).toBe('test.read');
  });
});

describe('audit verify --file checks the bytes of each line', () => {
  let lines: string[];
  let env: Record<string, string>;
  beforeAll(async () => {
    env = { BROKER_DATA_DIR: dataDir };
    const out = path.join(tempDir(), 'trail.jsonl');
    expect((await runCli(['audit', 'export', '--out', out], env)).code).toBe(0);
    lines = fs.readFileSync(out, 'utf8').trimEnd().split('\n');
    const ok = await runCli(['audit', 'verify', '--file', out], { BROKER_DATA_DIR: path.join(tempDir(), 'none') });
    expect(ok.code, ok.stderr).toBe(0);
  });

  const editLine = (edit: (line: string) => string) => lines.map((l, i) => (i === seq - 1 ? edit(l) : l));
  it.each([
    ['a duplicate key in its detail', (l: string) => l.replace('"detail":{', '"detail":{"action":"github.merge_pull",'), /detail is not stored in its canonical form/],
    ['reordered keys in its detail', (l: string) => l.replace(original, reordered(original)), /detail is not stored in its canonical form/],
    ['whitespace in its detail', (l: string) => l.replace(original, JSON.stringify(JSON.parse(original), null, 2).replaceAll('\n', ' ')), /detail is not stored in its canonical form/],
    ['a duplicate member of the row', (l: string) => l.replace('{"seq"', '{"actor":"mallory","seq"'), /the line is not written as `broker audit export` writes it/],
    ['members of the row reordered', (l: string) => JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(l) as Record<string, unknown>).reverse())), /the line is not written as `broker audit export` writes it/],
  ])('fails naming the line and seq on %s', async (_name, edit, message) => {
    const edited = editLine(edit);
    expect(edited[seq - 1]).not.toBe(lines[seq - 1]);
    const bad = path.join(tempDir(), 'bad.jsonl');
    fs.writeFileSync(bad, `${edited.join('\n')}\n`);
    const res = await runCli(['audit', 'verify', '--file', bad], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`audit export broken at line ${seq} (seq ${seq}): `);
    expect(res.stderr).toMatch(message);
  });
});
