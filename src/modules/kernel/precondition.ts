/**
 * Optimistic locking for task mutations (RFC 9110 §13.1.1 If-Match, RFC 6585 §3 428 Precondition
 * Required).
 */
import { ApiError } from '../../platform/http/problem.js';
import { etagOf } from './model.js';

const TAG_RE = /^"v(\d+)"$/;

/**
 * Checks an `If-Match` header against the task's current version. The header is one or more
 * comma-separated strong entity tags (`"v3"` or `"v3", "v4"`); weak tags (`W/…`) never match
 * (strong comparison), and `*` is refused because a mutation must name the version it read.
 * @throws ApiError 428 `precondition_required` when the header is missing or `*`;
 *   412 `precondition_failed` (with `current_etag`) when no listed tag is the current one.
 */
export function checkIfMatch(ifMatch: string | undefined | null, version: number): void {
  const value = ifMatch?.trim();
  if (!value || value === '*') {
    throw new ApiError('precondition_required', `Send If-Match with the task's ETag (currently ${etagOf(version)}); read the task first if you do not have it.`);
  }
  const matches = value.split(',').some((t) => Number(TAG_RE.exec(t.trim())?.[1]) === version);
  if (!matches) {
    throw new ApiError('precondition_failed', `The task changed since you read it: If-Match ${value} does not match the current ETag ${etagOf(version)}; read it again and retry.`, {
      current_etag: etagOf(version),
    });
  }
}
