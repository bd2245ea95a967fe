/**
 * The console reads and changes nothing itself: each page calls the broker's own `/v1` routes
 * in-process (`app.request`) with the session's bearer token, so authentication, roles, validation
 * and auditing are exactly the API's. An answer that is not 2xx comes back as {@link ApiAnswer}
 * with its problem+json body, which the page shows with the same status.
 */
import { randomUUID } from 'node:crypto';

/** Anything that answers a `Request` the way the broker's Hono app does (`app.request`). */
export interface InProcessApp {
  request(input: string, init?: RequestInit): Response | Promise<Response>;
}

/** An answer from the API: its status and parsed JSON body (a problem+json object when not 2xx). */
export interface ApiAnswer<T = any> {
  ok: boolean;
  status: number;
  body: T;
}

/**
 * Calls `method path` on the broker's app with `Authorization: Bearer <token>`. Body methods send
 * `json` and an `Idempotency-Key` (`idempotencyKey`, or a fresh UUID).
 */
export async function callApi<T = any>(app: InProcessApp, token: string, method: string, path: string, json?: unknown, idempotencyKey?: string): Promise<ApiAnswer<T>> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
  let body: string | undefined;
  if (method !== 'GET') {
    headers['idempotency-key'] = idempotencyKey ?? randomUUID();
    headers['content-type'] = 'application/json';
    body = JSON.stringify(json ?? {});
  }
  const res = await app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    parsed = { title: 'Unreadable answer', detail: text.slice(0, 200) };
  }
  return { ok: res.ok, status: res.status, body: parsed as T };
}

/** A query string from the defined, non-empty values of `params` (`?a=1&b=2`, or '' when none). */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}
