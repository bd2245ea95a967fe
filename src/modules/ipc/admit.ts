/**
 * What the file transport adds in front of the app, and how an answer becomes a file. The
 * verification and the decision path are the app's own (the request is handed to the same
 * `fetch` HTTP serves); the transport only narrows who may speak through a directory: the routes
 * of agent groups, signed with the key of the group whose directory it is.
 */
import { ApiError, problemResponse } from '../../platform/http/problem.js';
import { hasBody, KEYID_RE, keyidGroup, SIGNATURE_LABEL } from '../../protocol/profile.js';
import { parseSignatureInput } from '../../protocol/signature.js';
import type { IpcRequest, IpcResponseFile } from '../../protocol/ipc.js';

/**
 * The paths a request file may name: the agents' routes, `/v1/ext/*` (calls, capabilities),
 * `/v1/tasks*`, `/v1/dispatches*`, `/v1/whoami` and `/v1/grant-requests*`. Operator and auditor
 * routes are HTTP only.
 */
export const AGENT_PATH_RE = /^\/v1\/(?:ext\/.+|tasks(?:\/.*)?|dispatches(?:\/.*)?|whoami|grant-requests(?:\/.*)?)$/;

/**
 * The transport's own refusal of a request file, before the app sees it: 403 `forbidden` when the
 * path is not an agent route, or when the signature's `keyid` names another group than the
 * directory's (a group acts only through its own directory, and a request signed by another
 * group is never run from it). A `Signature-Input` that is absent or cannot be read is left to
 * the app, which answers it as over HTTP (401).
 * @returns the problem+json response, or null to hand the request to the app.
 */
export function admit(req: IpcRequest, group: string): Response | null {
  if (!AGENT_PATH_RE.test(req.path)) {
    return problemResponse(new ApiError('forbidden', `The IPC directory serves the agents' routes (/v1/ext/*, /v1/tasks, /v1/dispatches, /v1/whoami, /v1/grant-requests); ${req.method} ${req.path} is not one.`), req.path);
  }
  const signed = signedGroup(req.headers['signature-input']);
  if (signed !== null && signed !== group) {
    return problemResponse(new ApiError('forbidden', `A request in the IPC directory of ${group} must be signed with the key of ${group}; this one names ${signed}.`), req.path);
  }
  return null;
}

/** The group the `keyid` of the `broker` member names, or null when there is no readable one. */
function signedGroup(signatureInput: string | undefined): string | null {
  if (signatureInput === undefined) return null;
  try {
    const keyid = parseSignatureInput(signatureInput, SIGNATURE_LABEL)?.params.get('keyid');
    return typeof keyid === 'string' && KEYID_RE.test(keyid) ? keyidGroup(keyid) : null;
  } catch {
    return null;
  }
}

/**
 * The web `Request` the app receives for a file: its method, URL, header fields and body, and
 * `X-Request-Id: <request id>` (the file's name), which the broker's logs carry.
 */
export function toRequest(req: IpcRequest, requestId: string): Request {
  const headers = new Headers(req.headers);
  headers.set('x-request-id', requestId);
  return new Request(req.url, { method: req.method, headers, ...(hasBody(req.method) ? { body: req.body } : {}) });
}

/**
 * The answer file for a response: status, header fields (lower-case), and the body parsed as JSON
 * for a JSON media type, else as text (null when empty).
 */
export async function toResponseFile(requestId: string, res: Response): Promise<IpcResponseFile> {
  const headers: Record<string, string> = {};
  res.headers.forEach((value, name) => (headers[name] = value));
  const text = await res.text();
  let body: unknown = text === '' ? null : text;
  if (text !== '' && /^application\/(?:[\w.+-]+\+)?json\b/i.test(headers['content-type'] ?? '')) {
    try {
      body = JSON.parse(text);
    } catch {
      // keep the text
    }
  }
  return { request_id: requestId, status: res.status, headers, body };
}
