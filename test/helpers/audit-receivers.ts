/**
 * Real receivers for the audit stream's tests (a syslog server on 127.0.0.1 over UDP or TCP, an
 * HTTP endpoint that can be down), and the check every test makes of what they got: the lines,
 * de-duplicated by `seq`, must form a chain that `verifyExport` (the project's own chain code,
 * `broker audit verify --file`) verifies from seq 1 up to the broker's head.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { verifyExport, type ExportVerdict } from '../../src/platform/audit/export.js';
import { tempDir } from './harness.js';

/** An RFC 5424 message as the syslog sink sends it: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG`. */
const RFC5424 = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) - (.*)$/s;

/** One parsed syslog message. */
export interface SyslogMessage {
  pri: number;
  timestamp: string;
  appName: string;
  msgid: string;
  msg: string;
}

/** A syslog server on 127.0.0.1 (ephemeral port) collecting every message. */
export interface SyslogReceiver {
  port: number;
  messages: SyslogMessage[];
  /** Texts that were not RFC 5424 messages. */
  malformed: string[];
  close(): Promise<void>;
}

function parse(text: string, into: SyslogReceiver): void {
  const m = RFC5424.exec(text.replace(/\n$/, ''));
  if (!m) return void into.malformed.push(text);
  into.messages.push({ pri: Number(m[1]), timestamp: m[2]!, appName: m[4]!, msgid: m[6]!, msg: m[7]! });
}

/**
 * Starts a syslog receiver: UDP (one message per datagram) or TCP (messages end in LF, RFC 6587
 * §3.4.2), on `port` (0: an ephemeral one).
 */
export async function startSyslogReceiver(transport: 'udp' | 'tcp', port = 0): Promise<SyslogReceiver> {
  const r: SyslogReceiver = { port: 0, messages: [], malformed: [], close: async () => {} };
  if (transport === 'udp') {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (buf) => parse(buf.toString('utf8'), r));
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    r.port = socket.address().port;
    r.close = () => new Promise<void>((resolve) => socket.close(() => resolve()));
    return r;
  }
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    let buffered = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buffered += d;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        parse(buffered.slice(0, nl), r);
        buffered = buffered.slice(nl + 1);
      }
    });
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  r.port = (server.address() as AddressInfo).port;
  r.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return r;
}

/** One POST the HTTP receiver took while up. */
export interface HttpDelivery {
  contentType: string | undefined;
  authorization: string | undefined;
  lines: string[];
}

/** An HTTP receiver that answers 503 while `down` is true and 204 (keeping the body) otherwise. */
export interface HttpReceiver {
  url: string;
  down: boolean;
  /** POSTs refused while down. */
  refused: number;
  deliveries: HttpDelivery[];
  close(): Promise<void>;
}

/** Starts an HTTP receiver on 127.0.0.1 (ephemeral port), initially down when `down`. */
export async function startHttpReceiver(down: boolean): Promise<HttpReceiver> {
  const r: HttpReceiver = { url: '', down, refused: 0, deliveries: [], close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (r.down) {
        r.refused += 1;
        res.writeHead(503).end();
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      r.deliveries.push({ contentType: req.headers['content-type'], authorization: req.headers.authorization, lines: body.split('\n').filter((l) => l !== '') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ingest`;
  r.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return r;
}

/** The highest `seq` among JSON lines (0 for none). */
export function maxSeq(lines: string[]): number {
  return lines.reduce((m, l) => Math.max(m, (JSON.parse(l) as { seq: number }).seq), 0);
}

/**
 * De-duplicates `lines` by `seq` (a repeated seq must repeat the same line byte for byte), writes
 * them in seq order to a file and checks it with `verifyExport`.
 * @returns the verdict and how many lines were duplicates.
 * @throws Error when one seq came with two different lines.
 */
export async function verifyReceived(lines: string[]): Promise<{ verdict: ExportVerdict; duplicates: number }> {
  const bySeq = new Map<number, string>();
  let duplicates = 0;
  for (const line of lines) {
    const seq = (JSON.parse(line) as { seq: number }).seq;
    const seen = bySeq.get(seq);
    if (seen !== undefined) {
      duplicates += 1;
      if (seen !== line) throw new Error(`seq ${seq} arrived as two different lines:\n${seen}\n${line}`);
    }
    bySeq.set(seq, line);
  }
  const file = path.join(tempDir('audit-received-'), 'received.jsonl');
  const sorted = [...bySeq.entries()].sort((a, b) => a[0] - b[0]).map(([, l]) => `${l}\n`);
  fs.writeFileSync(file, sorted.join(''));
  return { verdict: await verifyExport(file), duplicates };
}

/** Polls `cond` every 50 ms until it holds; fails naming `what` after `timeoutMs` (a bound on a hang, not a timing assertion). */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
