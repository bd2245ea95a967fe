/**
 * Audit streaming to real receivers: a rotating file (small size limit, so it rotates; every
 * rotated file is read back), a syslog server on 127.0.0.1 over UDP and another over TCP. Rows are
 * written through the trail's own append (`appendActivities` in a transaction), the sinks stopped
 * and the database closed, then opened again on the same data directory (a broker restart), more
 * rows written and the sinks started again. What each receiver got, de-duplicated by `seq`, must be
 * a chain `verifyExport` verifies from seq 1 to the head, so nothing was lost or altered.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { appendActivities } from '../../src/platform/audit/trail.js';
import { immediate } from '../../src/platform/db/open.js';
import { loadAuditSinks, type AuditSinksPolicy } from '../../src/platform/audit/stream/config.js';
import { fileSink, oversizedLine, syslogLine } from '../../src/platform/audit/stream/sinks.js';
import { startAuditSinks, type AuditStream } from '../../src/platform/audit/stream/stream.js';
import { startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { maxSeq, startSyslogReceiver, until, verifyReceived, type SyslogReceiver } from '../helpers/audit-receivers.js';

/** Appends `n` rows through the trail's own append; every third carries a larger detail. */
function writeRows(b: TestBroker, n: number, tag: string): void {
  immediate(b.deps.db, () =>
    appendActivities(
      b.deps.db,
      Array.from({ length: n }, (_, i) => ({
        actor: 'operator:test',
        kind: 'test.streamed',
        subject: `${tag}-${i}`,
        detail: { i, tag, note: i % 3 === 0 ? 'x'.repeat(600) : 'short', nested: { z: 1, a: [true, null, 'é ✓'] } },
      })),
      b.clock.now(),
    ),
  );
}

const headOf = (b: TestBroker) => (b.deps.db.sqlite.prepare('SELECT max(seq) AS seq FROM gov_activities').get() as { seq: number }).seq;

/** The lag gauge's value for `sink` on the broker's registry. */
async function lag(b: TestBroker, sink: string): Promise<number | undefined> {
  const metric = await b.deps.metrics.registry.getSingleMetric('broker_audit_sink_lag_rows')?.get();
  return metric?.values.find((v) => v.labels.sink === sink)?.value;
}

/** The lines of every file of the file sink (the current one and each rotated one). */
function fileLines(dir: string): { files: string[]; lines: string[] } {
  if (!fs.existsSync(dir)) return { files: [], lines: [] };
  const files = fs.readdirSync(dir).filter((n) => n.startsWith('audit.jsonl'));
  const lines = files.flatMap((n) => fs.readFileSync(path.join(dir, n), 'utf8').split('\n').filter((l) => l !== ''));
  return { files, lines };
}

describe('audit sinks: file with rotation, syslog over UDP and TCP, across a broker restart', () => {
  const dataDir = tempDir();
  const policiesDir = tempDir();
  const receivers: SyslogReceiver[] = [];
  let broker: TestBroker | null = null;
  let stream: AuditStream | null = null;
  afterAll(async () => {
    await stream?.stop();
    await broker?.stop();
    await Promise.all(receivers.map((r) => r.close()));
  });

  /** Opens the broker on the data directory and starts its sinks from `audit-sinks.json`. */
  async function start(): Promise<{ b: TestBroker; policy: AuditSinksPolicy }> {
    const b = await startBroker({ dataDir, listen: false });
    const policy = loadAuditSinks(policiesDir, dataDir);
    stream = startAuditSinks({ outbox: b.deps.stores.outbox, logger: b.deps.logger, metrics: b.deps.metrics }, policy);
    broker = b;
    return { b, policy };
  }
  async function stop(): Promise<void> {
    await stream?.stop();
    await broker?.stop();
    stream = null;
    broker = null;
  }

  it('every receiver gets every row the broker wrote, and the chain verifies from what it got', { timeout: 120_000 }, async () => {
    const [udp, tcp] = [await startSyslogReceiver('udp'), await startSyslogReceiver('tcp')];
    receivers.push(udp, tcp);
    fs.writeFileSync(
      path.join(policiesDir, 'audit-sinks.json'),
      JSON.stringify({
        poll_ms: 20,
        max_backoff_ms: 200,
        sinks: [
          { id: 'local', type: 'file', path: 'stream/audit.jsonl', size: '2048B', batch_rows: 3 },
          { id: 'syslog-udp', type: 'syslog', host: '127.0.0.1', port: udp.port, transport: 'udp', batch_rows: 4 },
          { id: 'syslog-tcp', type: 'syslog', host: '127.0.0.1', port: tcp.port, transport: 'tcp' },
        ],
      }),
    );
    const streamDir = path.join(dataDir, 'stream');
    const caughtUp = async (b: TestBroker) => {
      const head = headOf(b);
      return maxSeq(fileLines(streamDir).lines) === head && maxSeq(udp.messages.map((m) => m.msg)) === head && maxSeq(tcp.messages.map((m) => m.msg)) === head;
    };

    let { b } = await start();
    writeRows(b, 12, 'before');
    await until(() => caughtUp(b), 'the sinks to deliver every row before the restart');
    for (const sink of ['local', 'syslog-udp', 'syslog-tcp']) await until(async () => (await lag(b, sink)) === 0, `${sink}'s lag to reach 0`);
    const headBefore = headOf(b);
    await stop();

    ({ b } = await start());
    writeRows(b, 15, 'after');
    await until(() => caughtUp(b), 'the sinks to deliver every row after the restart');
    const head = headOf(b);
    expect(head).toBeGreaterThan(headBefore);
    await stop();

    const file = fileLines(streamDir);
    expect(file.files.length, `rotated files: ${file.files.join(', ')}`).toBeGreaterThan(2);
    for (const [name, lines] of [['file', file.lines], ['syslog udp', udp.messages.map((m) => m.msg)], ['syslog tcp', tcp.messages.map((m) => m.msg)]] as const) {
      const { verdict } = await verifyReceived([...lines]);
      expect(verdict, name).toMatchObject({ ok: true, rows: head, start: { seq: 1 }, head: { seq: head } });
    }
    for (const m of [...udp.messages, ...tcp.messages]) expect(m).toMatchObject({ pri: 13 * 8 + 6, appName: 'nanoclaw-broker', msgid: 'audit' });
    expect([...udp.malformed, ...tcp.malformed]).toEqual([]);
  });
});

describe('a syslog TCP receiver that is down', () => {
  it('blocks nothing: rows are written, the lag counts them, and every row arrives once it is back', { timeout: 120_000 }, async () => {
    const first = await startSyslogReceiver('tcp');
    const port = first.port;
    await first.close(); // down: connections are refused
    const b = await startBroker({ listen: false });
    const stream = startAuditSinks(
      { outbox: b.deps.stores.outbox, logger: b.deps.logger, metrics: b.deps.metrics },
      { pollMs: 20, maxBackoffMs: 200, sinks: [{ id: 'siem', type: 'syslog', host: '127.0.0.1', port, transport: 'tcp', facility: 13, app_name: 'nanoclaw-broker', max_udp_bytes: 8192, timeout_ms: 10_000, batch_rows: 5 }] },
    );
    let back: SyslogReceiver | null = null;
    try {
      writeRows(b, 8, 'while-down');
      await until(async () => (await lag(b, 'siem')) === headOf(b), 'the lag to count every row while the receiver is down');
      await until(() => b.logs.some((l) => l.includes('audit sink failed; retrying from its cursor')), 'the sink to report its failure');
      writeRows(b, 4, 'still-down'); // the trail keeps taking rows
      back = await startSyslogReceiver('tcp', port);
      const received = back;
      await until(() => maxSeq(received.messages.map((m) => m.msg)) === headOf(b), 'every row to arrive once the receiver is back');
      await until(async () => (await lag(b, 'siem')) === 0, 'the lag to reach 0');
      const { verdict } = await verifyReceived(received.messages.map((m) => m.msg));
      expect(verdict).toMatchObject({ ok: true, rows: headOf(b), start: { seq: 1 } });
    } finally {
      await stream.stop();
      await b.stop();
      await back?.close();
    }
  });
});

describe('file sink with max_files', () => {
  it('keeps the newest rotated files only, each line whole, and its rotation list hidden', async () => {
    const dir = tempDir();
    const sink = fileSink({ id: 'f', type: 'file', path: path.join(dir, 'audit.jsonl'), size: '1K', max_files: 2, batch_rows: 1 });
    const row = (seq: number) => ({ seq, ts: '2026-01-01T00:00:00.000Z', actor: 'system', kind: 'k', subject: 's', detail: `{"pad":"${'p'.repeat(400)}"}`, prevHash: 'a'.repeat(64), hash: 'b'.repeat(64) });
    for (let seq = 1; seq <= 30; seq++) await sink.deliver([row(seq)], new AbortController().signal);
    await sink.close();
    const names = fs.readdirSync(dir);
    const visible = names.filter((n) => n.startsWith('audit.jsonl'));
    expect(visible.length, names.join(', ')).toBeLessThanOrEqual(3);
    expect(names).toContain('.audit.jsonl.rotated');
    const seqs = visible.flatMap((n) => fs.readFileSync(path.join(dir, n), 'utf8').split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { seq: number }).seq));
    expect(Math.max(...seqs)).toBe(30);
    expect(Math.min(...seqs)).toBeGreaterThan(1);
  });
});

describe('syslog over UDP: a row too large for one datagram', () => {
  it('is sent without its detail, naming the detail size, and still links the chain by seq, hash and prev_hash', async () => {
    const row = { seq: 7, ts: '2026-01-01T00:00:00.000Z', actor: 'system', kind: 'k', subject: 's', detail: `{"big":"${'y'.repeat(5000)}"}`, prevHash: 'a'.repeat(64), hash: 'b'.repeat(64) };
    expect(syslogLine(row, null)).toContain('y'.repeat(5000));
    const line = syslogLine(row, 1000);
    expect(line).toBe(oversizedLine(row, Buffer.byteLength(row.detail)));
    expect(JSON.parse(line)).toEqual({ seq: 7, ts: row.ts, actor: 'system', kind: 'k', subject: 's', detail_omitted: { bytes: 5010 }, prev_hash: row.prevHash, hash: row.hash });
  });
});

describe('audit-sinks.json is validated at start-up', () => {
  it('refuses an unknown sink type, a duplicate id, an unset bearer variable and credentials in a URL', () => {
    const dir = tempDir();
    const write = (json: unknown) => fs.writeFileSync(path.join(dir, 'audit-sinks.json'), JSON.stringify(json));
    write({ sinks: [{ id: 'a', type: 'socket', path: '/x' }] });
    expect(() => loadAuditSinks(dir, dir)).toThrow(/audit-sinks\.json: sinks\.0\.type/);
    write({ sinks: [{ id: 'a', type: 'file', path: 'x' }, { id: 'a', type: 'file', path: 'y' }] });
    expect(() => loadAuditSinks(dir, dir)).toThrow(/"a" is used twice/);
    write({ sinks: [{ id: 'h', type: 'http', url: 'https://siem.test/in', bearer_token_env: 'NO_SUCH_TOKEN_VARIABLE' }] });
    expect(() => loadAuditSinks(dir, dir, {})).toThrow(/NO_SUCH_TOKEN_VARIABLE is not set/);
    const ok = loadAuditSinks(dir, dir, { NO_SUCH_TOKEN_VARIABLE: 't0k' });
    expect(ok.sinks[0]).toMatchObject({ type: 'http', bearer: 't0k' });
    write({ sinks: [{ id: 'h', type: 'http', url: 'https://user:secret@siem.test/in' }] });
    expect(() => loadAuditSinks(dir, dir, {})).toThrow(/no credentials in the URL/);
    expect(loadAuditSinks(tempDir(), dir).sinks).toEqual([]);
  });

  it('accepts the example file', () => {
    const dir = tempDir();
    fs.copyFileSync(path.join(import.meta.dirname, '../../policies/audit-sinks.example.json'), path.join(dir, 'audit-sinks.json'));
    expect(loadAuditSinks(dir, '/data', { SIEM_INGEST_TOKEN: 'x' }).sinks.map((s) => s.type)).toEqual(['file', 'syslog', 'http']);
  });
});
