/**
 * Decoding of a log entry's `protoPayload` (a `google.protobuf.Any`) into proto3 JSON, for the
 * payload types an agent needs: Cloud Audit Logs (`google.cloud.audit.AuditLog`, the format of the
 * Admin Activity, Data Access, System Event and Policy Denied logs).
 *
 * The real client hands the payload over undecoded: `Entry.fromApiResponse_` sets `entry.data` to
 * the Any as gRPC decoded it, `{type_url: string, value: Buffer}`. The message is decoded with
 * protobufjs from Google's official `.proto` files, copied unchanged from googleapis (Apache-2.0)
 * into {@link PROTOS_DIR}, then converted to proto3 JSON (camelCase names, int64 as decimal strings, enums as names,
 * unset fields left out, `google.protobuf.Struct` as plain JSON, `Timestamp` as RFC 3339,
 * `Duration` as `"1.5s"`, a nested `Any` as its message plus `"@type"`).
 *
 * protobufjs and the .proto files load on the first payload to decode (about 25–50 ms, once per
 * process), not at start-up.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as Protobuf from 'protobufjs';
import { packagePath } from '../../platform/paths.js';

const require = createRequire(import.meta.url);

/** The full names (no leading dot) of the message types a top-level protoPayload is decoded as. */
export const DECODED_TYPES: ReadonlySet<string> = new Set(['google.cloud.audit.AuditLog']);

/**
 * Google's `.proto` files the decoder needs, copied unchanged from googleapis (as published in
 * `google-proto-files` 5.0.3; Apache-2.0, `LICENSE` beside them): AuditLog and what it imports, and
 * the standard error details. `google/protobuf/*` comes from protobufjs itself.
 */
export const PROTOS_DIR = packagePath('src', 'providers', 'cloudlogs', 'protos');

/**
 * The .proto files loaded, relative to {@link PROTOS_DIR}: AuditLog (with what it imports:
 * `google/rpc/status.proto`, `google/rpc/context/attribute_context.proto`, …), and the standard
 * error details a `status.details` Any usually holds.
 */
const PROTO_FILES = ['google/cloud/audit/audit_log.proto', 'google/rpc/error_details.proto'];

/** What {@link decodeProtoPayload} made of a payload. */
export type ProtoPayloadResult =
  /** `payload`: the message as proto3 JSON with its `"@type"` (the type URL) first. */
  | { ok: true; payload: Record<string, unknown> }
  /**
   * `unknown type`: not one of {@link DECODED_TYPES}; `decode failed`: the bytes (or the .proto
   * files) could not be decoded, with the error in `error`.
   */
  | { ok: false; typeUrl: string; reason: 'unknown type' | 'decode failed'; error?: Error };

/** protobufjs `toObject` options; the result is then mapped to proto3 JSON by {@link messageJson}. */
const TO_OBJECT: Protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  bytes: String,
  defaults: false,
  arrays: false,
  objects: false,
  oneofs: false,
  // json: non-finite doubles as "NaN"/"Infinity", and a nested Any of a type in the root decoded
  // (protobufjs' Any wrapper) into its message's fields plus "@type".
  json: true,
};

let loaded: { root: Protobuf.Root } | { error: Error } | null = null;

/**
 * The protobufjs root holding {@link PROTO_FILES}, loaded (synchronously) on first use. A load
 * failure is remembered, so it is not retried for every entry. `google/protobuf/*` imports
 * resolve to protobufjs' own copies (its built-in common types, and `descriptor.proto`).
 * @throws Error when `protobufjs` or the .proto files cannot be loaded.
 */
export function protoRoot(): Protobuf.Root {
  if (!loaded) {
    try {
      const protobuf = require('protobufjs') as typeof Protobuf;
      const protobufDir = path.dirname(require.resolve('protobufjs/package.json'));
      const root = new protobuf.Root();
      root.resolvePath = (_origin, target) => path.join(target.startsWith('google/protobuf/') ? protobufDir : PROTOS_DIR, target);
      root.loadSync(PROTO_FILES);
      root.resolveAll();
      loaded = { root };
    } catch (err) {
      loaded = { error: err instanceof Error ? err : new Error(String(err)) };
    }
  }
  if ('error' in loaded) throw loaded.error;
  return loaded.root;
}

/** The full message name of a type URL: what follows its last `/`. */
const typeNameOf = (typeUrl: string): string => typeUrl.slice(typeUrl.lastIndexOf('/') + 1);

/**
 * Decodes a protoPayload as the client hands it (`{type_url, value}`, `value` a Buffer, a
 * Uint8Array or base64 text) into proto3 JSON. Never throws: a payload that is not one of
 * {@link DECODED_TYPES}, or that fails to decode, is reported in the result.
 */
export function decodeProtoPayload(any: unknown): ProtoPayloadResult {
  const a = (any ?? {}) as { type_url?: unknown; typeUrl?: unknown; value?: unknown };
  const typeUrl = String(a.type_url ?? a.typeUrl ?? '');
  const name = typeNameOf(typeUrl);
  if (!DECODED_TYPES.has(name)) return { ok: false, typeUrl, reason: 'unknown type' };
  try {
    const type = protoRoot().lookupType(name);
    const value = a.value;
    const bytes =
      value instanceof Uint8Array ? value : typeof value === 'string' ? Buffer.from(value, 'base64') : new Uint8Array(0);
    const json = messageJson(type, type.toObject(type.decode(bytes), TO_OBJECT)) as Record<string, unknown>;
    return { ok: true, payload: { '@type': typeUrl, ...json } };
  } catch (err) {
    return { ok: false, typeUrl, reason: 'decode failed', error: err instanceof Error ? err : new Error(String(err)) };
  }
}

type Obj = Record<string, unknown>;

/**
 * Maps protobufjs `toObject` output of a message of `type` (with {@link TO_OBJECT}) to proto3
 * JSON: scalars, enums and bytes are already in their JSON form; this walks the message fields and
 * rewrites the well-known types the loaded protos use (Struct, Value, ListValue, Timestamp,
 * Duration, Any). Fields come out in the order the .proto declares them.
 */
function messageJson(type: Protobuf.Type, obj: Obj): unknown {
  switch (type.fullName) {
    case '.google.protobuf.Struct':
      return structJson(obj);
    case '.google.protobuf.Value':
      return valueJson(obj);
    case '.google.protobuf.ListValue':
      return listJson(obj);
    case '.google.protobuf.Timestamp':
      return timestampJson(obj);
    case '.google.protobuf.Duration':
      return durationJson(obj);
    case '.google.protobuf.Any':
      return anyJson(type, obj);
  }
  const out: Obj = {};
  // In the order the .proto declares the fields (AuditLog: serviceName, methodName, … first).
  const keys = [...type.fieldsArray.map((f) => f.name).filter((k) => k in obj), ...Object.keys(obj).filter((k) => !type.fields[k])];
  for (const key of keys) {
    const v = obj[key];
    const field = type.fields[key];
    const sub = field?.resolvedType;
    if (!field || !sub || !('fieldsArray' in sub) || v === null || typeof v !== 'object') {
      out[key] = v;
    } else if (field.map) {
      out[key] = Object.fromEntries(Object.entries(v as Obj).map(([k, x]) => [k, messageJson(sub, x as Obj)]));
    } else if (Array.isArray(v)) {
      out[key] = v.map((x) => messageJson(sub, x as Obj));
    } else {
      out[key] = messageJson(sub, v as Obj);
    }
  }
  return out;
}

function structJson(obj: Obj): Obj {
  const fields = (obj['fields'] ?? {}) as Record<string, Obj>;
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, valueJson(v)]));
}

/** A `google.protobuf.Value` (only its set `kind` member is present, `oneofs: false`). */
function valueJson(obj: Obj): unknown {
  if ('structValue' in obj) return structJson(obj['structValue'] as Obj);
  if ('listValue' in obj) return listJson(obj['listValue'] as Obj);
  if ('stringValue' in obj) return obj['stringValue'];
  if ('numberValue' in obj) return obj['numberValue'];
  if ('boolValue' in obj) return obj['boolValue'];
  return null;
}

function listJson(obj: Obj): unknown[] {
  return ((obj['values'] ?? []) as Obj[]).map(valueJson);
}

/** 0, 3, 6 or 9 fractional digits, as proto3 JSON prints Timestamp and Duration nanos. */
function fraction(nanos: number): string {
  if (nanos === 0) return '';
  if (nanos % 1e6 === 0) return `.${String(nanos / 1e6).padStart(3, '0')}`;
  if (nanos % 1e3 === 0) return `.${String(nanos / 1e3).padStart(6, '0')}`;
  return `.${String(nanos).padStart(9, '0')}`;
}

/** `2026-01-01T00:00:01.250Z`; the seconds/nanos object itself when out of proto3's range. */
function timestampJson(obj: Obj): unknown {
  const seconds = Number(obj['seconds'] ?? 0);
  const nanos = Number(obj['nanos'] ?? 0);
  // 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, the range proto3 JSON allows.
  if (!(seconds >= -62_135_596_800 && seconds <= 253_402_300_799) || !(nanos >= 0 && nanos <= 999_999_999)) return obj;
  return `${new Date(seconds * 1000).toISOString().slice(0, 19)}${fraction(nanos)}Z`;
}

/** `1.500s`, `-0.250s`: seconds and nanos carry the same sign. */
function durationJson(obj: Obj): string {
  const seconds = Number(obj['seconds'] ?? 0);
  const nanos = Number(obj['nanos'] ?? 0);
  const sign = seconds < 0 || nanos < 0 ? '-' : '';
  return `${sign}${Math.abs(seconds)}${fraction(Math.abs(nanos))}s`;
}

/**
 * A nested Any. protobufjs has already decoded one whose type is in the root into its fields
 * plus `"@type"`; one of another type is left as `{type_url, value}` and becomes `{"@type"}` alone
 * (its bytes cannot be shown as JSON, nor redacted).
 */
function anyJson(anyType: Protobuf.Type, obj: Obj): Obj {
  const typeUrl = obj['@type'];
  if (typeof typeUrl !== 'string') {
    const url = obj['type_url'];
    return typeof url === 'string' && url ? { '@type': url } : {};
  }
  const inner = anyType.root.lookupType(typeNameOf(typeUrl));
  const { '@type': _, ...rest } = obj;
  const json = messageJson(inner, rest);
  return SPECIAL_JSON.has(inner.fullName) ? { '@type': typeUrl, value: json } : { '@type': typeUrl, ...(json as Obj) };
}

/** Well-known types with a JSON form of their own: inside an Any they go under `value`. */
const SPECIAL_JSON = new Set(
  ['Any', 'Duration', 'FieldMask', 'ListValue', 'Struct', 'Timestamp', 'Value'].map((t) => `.google.protobuf.${t}`),
);
