import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the broker keeps its state, parsed from `BROKER_DATABASE_URL`:
 * - `{engine: 'sqlite', path}`: the embedded SQLite file (absolute path), the default;
 * - `{engine: 'postgres', url}`: a PostgreSQL server, the `postgres://` or `postgresql://` URL
 *   exactly as given (user, password, host, port, database and query options such as `sslmode`,
 *   `sslrootcert`, `application_name` are read by the `pg` driver's connection-string parser).
 *   The URL may hold a password: print it only through {@link describeDatabase}.
 */
export type DatabaseTarget = { engine: 'sqlite'; path: string } | { engine: 'postgres'; url: string };

/** The URL schemes that select PostgreSQL (libpq's two spellings). */
const POSTGRES_SCHEMES = new Set(['postgres:', 'postgresql:']);

/**
 * Parses a `BROKER_DATABASE_URL` value.
 * - `file:<path>` (`file:./data/broker.db`, `file:/var/lib/broker.db`) or a `file:///abs/path` URL:
 *   SQLite at that path, resolved against the working directory. SQLite URI query parameters
 *   (`?mode=ro`) are refused: the broker sets its own pragmas.
 * - `postgres://…` or `postgresql://…` with a host: PostgreSQL.
 * @returns the target, or a message saying why `text` is not one (for the configuration error).
 */
export function parseDatabaseUrl(text: string): DatabaseTarget | { error: string } {
  const t = text.trim();
  if (/^file:/i.test(t)) {
    if (t.includes('?') || t.includes('#')) return { error: 'a file: URL takes a path only, without ?query or #fragment' };
    let file: string;
    try {
      file = /^file:\/\//i.test(t) ? fileURLToPath(t) : decodeURIComponent(t.slice('file:'.length));
    } catch (err) {
      return { error: `"${t}" is not a file path: ${(err as Error).message}` };
    }
    if (file === '') return { error: 'file: needs a path, such as file:./data/broker.db' };
    return { engine: 'sqlite', path: path.resolve(file) };
  }
  let url: URL;
  try {
    url = new URL(t);
  } catch {
    return { error: 'expected file:<path> (SQLite) or postgres://user:password@host:5432/database (PostgreSQL)' };
  }
  if (!POSTGRES_SCHEMES.has(url.protocol)) {
    return { error: `unsupported scheme "${url.protocol}": use file:<path> (SQLite) or postgres:// / postgresql:// (PostgreSQL)` };
  }
  if (url.hostname === '' && !url.searchParams.has('host')) return { error: 'a postgres:// URL needs a host' };
  return { engine: 'postgres', url: t };
}

/**
 * A printable description of the target, for logs and `serve`'s start-up line: the SQLite path,
 * or the PostgreSQL URL with any password replaced by `***` (and `password=` query options too),
 * so no credential reaches a log.
 */
export function describeDatabase(target: DatabaseTarget): string {
  if (target.engine === 'sqlite') return target.path;
  try {
    const url = new URL(target.url);
    if (url.password !== '') url.password = '***';
    for (const key of [...url.searchParams.keys()]) if (/pass/i.test(key)) url.searchParams.set(key, '***');
    return url.toString();
  } catch {
    return 'postgres://***';
  }
}
