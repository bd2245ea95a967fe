/**
 * A real Standard Webhooks receiver for the webhook tests: an HTTP server on 127.0.0.1 (an
 * ephemeral port, kept across restarts) that verifies each request's signature with the
 * `standardwebhooks` library and records what it accepted by `webhook-id`. It can answer 503
 * (`mode = 'unavailable'`), or be stopped (connection refused) and started again on its port.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** One accepted delivery. */
export interface Received {
  id: string;
  timestamp: string;
  body: { type: string; timestamp: string; data: Record<string, unknown> };
}

export class Receiver {
  /** `up`: verify and answer 204; `unavailable`: answer 503 without reading further. */
  mode: 'up' | 'unavailable' = 'up';
  /** Every request that verified, in arrival order (duplicates included). */
  readonly accepted: Received[] = [];
  /** Requests answered 503. */
  refused = 0;
  /** Requests whose signature did not verify (answered 401). */
  readonly bad: string[] = [];
  port = 0;
  private server: http.Server | null = null;

  constructor(private readonly secret: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  /** The accepted deliveries de-duplicated by `webhook-id` (first copy kept). */
  unique(): Map<string, Received> {
    const out = new Map<string, Received>();
    for (const r of this.accepted) if (!out.has(r.id)) out.set(r.id, r);
    return out;
  }

  async start(): Promise<void> {
    const wh = new Webhook(this.secret);
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (this.mode === 'unavailable') {
          this.refused += 1;
          res.writeHead(503).end();
          return;
        }
        const body = Buffer.concat(chunks).toString('utf8');
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
        try {
          const parsed = wh.verify(body, headers) as Received['body'];
          this.accepted.push({ id: headers['webhook-id']!, timestamp: headers['webhook-timestamp']!, body: parsed });
          res.writeHead(204).end();
        } catch (err) {
          this.bad.push((err as Error).message);
          res.writeHead(401).end();
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Stops listening (connections are refused until {@link start}). */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** Polls `check` every 50 ms until it holds; throws naming `what` after `deadlineMs`. */
export async function until<T>(what: string, check: () => T | Promise<T>, deadlineMs = 60_000): Promise<NonNullable<T>> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
