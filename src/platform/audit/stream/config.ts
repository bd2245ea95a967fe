/**
 * `policies/audit-sinks.json`: where `broker serve` streams the audit trail (every `gov_activities`
 * row, as one JSON line) for a SIEM to take. Validated with zod when the broker starts; a malformed
 * file, or an `http` sink whose bearer variable is unset, stops the start. An absent file streams
 * nothing. See `policies/audit-sinks.example.json` and docs/audit.md ("Streaming").
 *
 * Sink kinds:
 * - `file`: appends the lines to `path` (relative paths are under the data directory), rotated by
 *   size and/or interval (rotating-file-stream), rotated files kept beside it.
 * - `syslog`: one RFC 5424 message per row over UDP (RFC 5426) or TCP (RFC 6587 octet-stuffing:
 *   messages end in LF), the JSON line as MSG.
 * - `http`: POSTs batches as `application/jsonl` to `url`, with `Authorization: Bearer <token>`
 *   read from the environment variable `bearer_token_env` when set; retried with backoff.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/** A sink id: the cursor name is `sink:<id>` and the metric label is `<id>`. */
const SinkId = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'a lower-case id of letters, digits, - and _ (at most 40)');

const Common = {
  id: SinkId,
  /** Rows read from the trail and handed to the sink at once. */
  batch_rows: z.number().int().min(1).max(10_000).default(500),
};

const FileSink = z.strictObject({
  ...Common,
  type: z.literal('file'),
  /** The file written; rotated files get `.<UTC time>-<n>` appended. Relative: under the data directory. */
  path: z.string().min(1),
  /** Rotate once the file reaches this size (rotating-file-stream syntax: `10M`, `500K`, `2048B`). */
  size: z.string().regex(/^[1-9][0-9]*[BKMG]$/, 'a size such as 10M, 500K or 2048B').optional(),
  /** Rotate every interval (rotating-file-stream syntax: `1d`, `6h`, `30m`). */
  interval: z.string().regex(/^[1-9][0-9]*[Mdhms]$/, 'an interval such as 1d, 6h or 30m').optional(),
  /** Rotated files kept; older ones are deleted. Absent: all kept. */
  max_files: z.number().int().min(1).max(100_000).optional(),
});

const SyslogSink = z.strictObject({
  ...Common,
  type: z.literal('syslog'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65_535).default(514),
  transport: z.enum(['udp', 'tcp']).default('udp'),
  /** RFC 5424 facility number (13 = log audit, 16-23 = local0-local7). */
  facility: z.number().int().min(0).max(23).default(13),
  app_name: z.string().regex(/^[!-~]{1,48}$/, 'RFC 5424 APP-NAME: 1-48 printable ASCII characters').default('nanoclaw-broker'),
  /**
   * Largest message sent over UDP, in bytes (header included). A row whose message would be
   * larger is sent without its `detail` (see `oversizedLine`). RFC 5426 §3.2: receivers must take
   * 480 bytes and should take 2048; the IPv4 UDP payload limit is 65507.
   */
  max_udp_bytes: z.number().int().min(480).max(65_507).default(8192),
  /** The longest one message may take to be written (TCP: a receiver that stopped reading), ms. */
  timeout_ms: z.number().int().min(100).max(600_000).default(10_000),
});

const HttpSink = z.strictObject({
  ...Common,
  type: z.literal('http'),
  /** Where batches are POSTed; no user or password in it (credentials come from `bearer_token_env`, never from a file). */
  url: z.url({ protocol: /^https?$/ }).refine((u) => {
    const url = new URL(u);
    return url.username === '' && url.password === '';
  }, 'no credentials in the URL: put the token in the variable named by bearer_token_env'),
  /** The environment variable holding the bearer token (never the token itself). */
  bearer_token_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
  /** Per request, ms. */
  timeout_ms: z.number().int().min(100).max(600_000).default(10_000),
  /** Attempts of one batch before the sink backs off and reads again from its cursor. */
  retries: z.number().int().min(0).max(20).default(5),
});

const SinkSpec = z.discriminatedUnion('type', [FileSink, SyslogSink, HttpSink]);

const SinksFile = z.strictObject({
  sinks: z.array(SinkSpec).default([]),
  /** How often an idle sink looks for new rows, ms. */
  poll_ms: z.number().int().min(10).max(60_000).default(500),
  /** The longest a failing sink waits before reading again from its cursor, ms (backoff doubles up to it). */
  max_backoff_ms: z.number().int().min(100).max(3_600_000).default(60_000),
});

/** One sink as configured (see the file's docstring). */
export type SinkSpec = z.infer<typeof SinkSpec>;
/** A file sink: its path, rotation by size (bytes) and/or interval, and how many rotated files to keep. */
export type FileSinkSpec = z.infer<typeof FileSink>;
/** A syslog sink: RFC 5424 over UDP or TCP to host:port, with its facility, app name and largest UDP message (bytes). */
export type SyslogSinkSpec = z.infer<typeof SyslogSink>;
/** An http sink with its bearer token resolved from the environment (`null`: no Authorization header). */
export type HttpSinkSpec = z.infer<typeof HttpSink> & { bearer: string | null };

/** The parsed `audit-sinks.json`: the sinks, the idle poll and the longest backoff, in ms. */
export interface AuditSinksPolicy {
  sinks: (FileSinkSpec | SyslogSinkSpec | HttpSinkSpec)[];
  pollMs: number;
  maxBackoffMs: number;
}

/**
 * Loads and validates `<policiesDir>/audit-sinks.json`; an absent file answers no sinks.
 * @param dataDir the base of relative file-sink paths.
 * @param env where `bearer_token_env` variables are read (default `process.env`); `null` reads
 *   none (every `bearer` is then null: for reports such as `broker audit sinks`, never to deliver).
 * @throws Error naming the file and the first invalid field (malformed JSON, unknown field or type,
 *   duplicate id, an unset bearer variable).
 */
export function loadAuditSinks(policiesDir: string, dataDir: string, env: NodeJS.ProcessEnv | null = process.env): AuditSinksPolicy {
  const file = path.join(policiesDir, 'audit-sinks.json');
  if (!fs.existsSync(file)) return { sinks: [], pollMs: 500, maxBackoffMs: 60_000 };
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  const parsed = SinksFile.safeParse(json);
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const seen = new Set<string>();
  const sinks = parsed.data.sinks.map((s, i) => {
    if (seen.has(s.id)) throw new Error(`${file}: sinks.${i}.id: "${s.id}" is used twice`);
    seen.add(s.id);
    if (s.type === 'file') return { ...s, path: path.resolve(dataDir, s.path) };
    if (s.type !== 'http') return s;
    let bearer: string | null = null;
    if (s.bearer_token_env !== undefined && env !== null) {
      const value = env[s.bearer_token_env];
      if (value === undefined || value === '') throw new Error(`${file}: sinks.${i}.bearer_token_env: the variable ${s.bearer_token_env} is not set`);
      bearer = value;
    }
    return { ...s, bearer };
  });
  return { sinks, pollMs: parsed.data.poll_ms, maxBackoffMs: parsed.data.max_backoff_ms };
}
