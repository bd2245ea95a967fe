/**
 * What the Cloud Logs actions return: trimmed, redacted log entries, with each payload
 * and the whole result capped in bytes. A payload is text, JSON, or a decoded protoPayload (Cloud
 * Audit Logs, see proto-payload.ts); a protoPayload that cannot be decoded is reported, not dropped.
 */
import type { Entry } from '@google-cloud/logging';
import { redact, redactString } from '../../platform/audit/redact.js';
import type { Logger } from '../../platform/log.js';
import { decodeProtoPayload } from './proto-payload.js';

/** Cap on one entry's payload, in UTF-8 bytes (8 KiB). */
export const MAX_PAYLOAD_BYTES = 8 * 1024;

/**
 * One log entry as the broker returns it: the fields of Cloud Logging's `LogEntry` an agent needs,
 * every string passed through the shared secret redaction. At most one of `textPayload`,
 * `jsonPayload` and `protoPayload` is present.
 */
export interface TrimmedEntry {
  /** RFC 3339 UTC, millisecond precision; null when the entry has none. */
  timestamp: string | null;
  /** `DEFAULT`, `DEBUG`, `INFO`, …, `EMERGENCY`. */
  severity: string;
  /** `projects/<project>/logs/<url-encoded log id>`. */
  logName: string;
  resource: { type: string; labels: Record<string, string> } | null;
  labels: Record<string, string>;
  /** The text payload (at most {@link MAX_PAYLOAD_BYTES} bytes). */
  textPayload?: string;
  /**
   * The JSON payload; when `payloadTruncated` is true, the first {@link MAX_PAYLOAD_BYTES} bytes of
   * its JSON text instead.
   */
  jsonPayload?: unknown;
  /**
   * The proto payload as proto3 JSON, `"@type"` (its type URL) first. A Cloud Audit Log
   * (`type.googleapis.com/google.cloud.audit.AuditLog`) is decoded whole: `serviceName`,
   * `methodName`, `resourceName`, `authenticationInfo`, `authorizationInfo`, `requestMetadata`,
   * `status`, and `request`/`response`/`metadata` as plain JSON objects. Payloads of any other
   * type, or that fail to decode, are `{"@type": <type URL>}` alone, with `payloadOmitted` set.
   * Capped like `jsonPayload`: when `payloadTruncated` is true, the first
   * {@link MAX_PAYLOAD_BYTES} bytes of its JSON text instead.
   */
  protoPayload?: unknown;
  /** Present and true when the payload was cut to {@link MAX_PAYLOAD_BYTES} bytes. */
  payloadTruncated?: true;
  /**
   * Present when a protoPayload's content is left out: `unknown type` (a type the broker does
   * not decode) or `decode failed` (its bytes could not be decoded; the broker logs a warning).
   */
  payloadOmitted?: PayloadOmitted;
  /** `projects/<project>/traces/<trace id>`, when set. */
  trace?: string;
  insertId: string;
}

/** Why a protoPayload's content is left out (see {@link TrimmedEntry.payloadOmitted}). */
export type PayloadOmitted = 'unknown type' | 'decode failed';

/**
 * Trims one entry from the client (`Entry.fromApiResponse_` shape), redacts every string in it,
 * then caps its payload. Redaction runs before the cut, so a secret is never cut into a fragment
 * the patterns no longer recognise. A protoPayload (the client's `{type_url, value}`) is decoded
 * when it is a Cloud Audit Log; otherwise only its type URL is kept, with `payloadOmitted`. Never
 * throws on a payload.
 * @param log where a protoPayload that fails to decode is reported (at warn, without its
 *   content).
 */
export function trimEntry(entry: Entry, log?: Logger): TrimmedEntry {
  const m = entry.metadata as Record<string, any>;
  const ts = m['timestamp'];
  const resource = m['resource'] as { type?: string; labels?: Record<string, string> } | null | undefined;
  const out: TrimmedEntry = {
    timestamp: ts instanceof Date && !Number.isNaN(ts.getTime()) ? ts.toISOString() : null,
    severity: typeof m['severity'] === 'string' && m['severity'] ? m['severity'] : 'DEFAULT',
    logName: String(m['logName'] ?? ''),
    resource: resource?.type ? { type: resource.type, labels: { ...(resource.labels ?? {}) } } : null,
    labels: { ...((m['labels'] as Record<string, string> | undefined) ?? {}) },
    insertId: String(m['insertId'] ?? ''),
  };
  if (m['payload'] === 'textPayload') out.textPayload = String(entry.data ?? '');
  if (m['payload'] === 'jsonPayload') out.jsonPayload = entry.data ?? {};
  if (m['payload'] === 'protoPayload') {
    const decoded = decodeProtoPayload(entry.data);
    if (decoded.ok) {
      out.protoPayload = decoded.payload;
    } else {
      out.protoPayload = { '@type': decoded.typeUrl };
      out.payloadOmitted = decoded.reason;
      if (decoded.error) {
        log?.warn(
          { typeUrl: decoded.typeUrl, insertId: out.insertId, logName: out.logName, error: redactString(decoded.error.message).slice(0, 300) },
          'cloudlogs: a protoPayload could not be decoded; returned without its content',
        );
      }
    }
  }
  if (typeof m['trace'] === 'string' && m['trace']) out.trace = m['trace'];
  return capPayload(redact(out));
}

/** Cuts the entry's payload (text, or the JSON text of a JSON or proto payload) to {@link MAX_PAYLOAD_BYTES}. */
function capPayload(e: TrimmedEntry): TrimmedEntry {
  if (e.textPayload !== undefined && Buffer.byteLength(e.textPayload) > MAX_PAYLOAD_BYTES) {
    return { ...e, textPayload: cutBytes(e.textPayload, MAX_PAYLOAD_BYTES), payloadTruncated: true };
  }
  for (const key of ['jsonPayload', 'protoPayload'] as const) {
    if (e[key] === undefined) continue;
    const text = JSON.stringify(e[key]);
    if (Buffer.byteLength(text) > MAX_PAYLOAD_BYTES) {
      return { ...e, [key]: cutBytes(text, MAX_PAYLOAD_BYTES), payloadTruncated: true };
    }
  }
  return e;
}

/** The longest prefix of `s` that is at most `max` UTF-8 bytes, never splitting a character. */
function cutBytes(s: string, max: number): string {
  const cut = Buffer.from(s, 'utf8').subarray(0, max).toString('utf8');
  return cut.endsWith('\uFFFD') && !s.startsWith(cut) ? cut.slice(0, -1) : cut;
}

/**
 * Counts the bytes of a result's items (their JSON) against a cap. The first item is always
 * admitted, so a page always makes progress (Cloud Logging entries are at most 256 KB each).
 */
export class ResultBudget {
  private used = 0;
  private count = 0;
  /** @param maxBytes the cap on the sum of the items' JSON sizes, in bytes. */
  constructor(readonly maxBytes: number) {}

  /** True, and counted, when `item` fits (or is the first); false when it would exceed the cap. */
  admit(item: unknown): boolean {
    const size = Buffer.byteLength(JSON.stringify(item)) + 1;
    if (this.count > 0 && this.used + size > this.maxBytes) return false;
    this.used += size;
    this.count += 1;
    return true;
  }
}
