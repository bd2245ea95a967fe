/**
 * Zod building blocks for the GitHub actions' params and the resources they name.
 * Every action's params are a strict object (unknown keys refused) built from these, so a request
 * that could steer the host's credential somewhere else (an owner with `/`, a `../` path, a ref
 * that is not a branch name) is answered 422 before any HTTP request.
 */
import { z } from 'zod';

/** Longest title (issues, pull requests), in characters; GitHub's own limit is 256. */
export const MAX_TITLE = 256;
/** Longest body (issues, comments, pull requests, commit messages), in characters; GitHub caps bodies at 65 536. */
export const MAX_BODY = 65_536;
/** Longest file content put_file accepts, in characters (the broker's body limit is usually smaller). */
export const MAX_FILE_CONTENT = 1_000_000;

/** An account login (user or organisation): 1–39 of `[A-Za-z0-9-]`, not starting with `-`. */
export const owner = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,38}$/, 'must be 1-39 characters of [A-Za-z0-9-], not starting with "-"');

/** A repository name: 1–100 of `[A-Za-z0-9._-]`, neither `.` nor `..`. */
export const repo = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,100}$/, 'must be 1-100 characters of [A-Za-z0-9._-]')
  .refine((r) => r !== '.' && r !== '..', 'must not be "." or ".."');

/** A user login (assignees, creators); same rule as {@link owner}. */
export const login = owner;

/**
 * Why `name` is not a valid branch name under `git check-ref-format --branch`, or null when it is.
 * Rules (git-check-ref-format(1)): no component starts with `.` or ends with `.lock`; no `..`;
 * no control characters, space, `~ ^ : ? * [ \`; does not start or end with `/` and has no `//`;
 * does not end with `.`; no `@{`; not `@`; does not start with `-`; at most 255 bytes.
 * `HEAD` and names starting with `refs/` are refused too (they name other refs).
 */
export function branchNameProblem(name: string): string | null {
  if (name.length === 0) return 'must not be empty';
  if (Buffer.byteLength(name, 'utf8') > 255) return 'must be at most 255 bytes';
  if (name.startsWith('-')) return 'must not start with "-"';
  if (name === '@') return 'must not be "@"';
  if (name === 'HEAD' || name.startsWith('refs/')) return 'must be a plain branch name (not HEAD or refs/...)';
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name)) return 'must not contain spaces, control characters or any of ~ ^ : ? * [ \\';
  if (name.includes('..')) return 'must not contain ".."';
  if (name.includes('@{')) return 'must not contain "@{"';
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) return 'must not start or end with "/" or contain "//"';
  if (name.endsWith('.')) return 'must not end with "."';
  for (const part of name.split('/')) {
    if (part.startsWith('.')) return 'no path component may start with "."';
    if (part.endsWith('.lock')) return 'no path component may end with ".lock"';
  }
  return null;
}

/** A branch name that `git check-ref-format --branch` accepts (see {@link branchNameProblem}). */
export const branch = z.string().superRefine((name, ctx) => {
  const problem = branchNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: `branch name ${problem}` });
});

/** A commit SHA: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits. */
export const sha = z.string().regex(/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/, 'must be a 40- or 64-digit lowercase hex commit SHA');

/** A branch, tag or commit to read at: a branch-name-shaped ref or a SHA. */
export const ref = z.union([sha, branch]);

/**
 * Why `path` is not an acceptable repository path, or null: 1–1024 characters, no leading or
 * trailing `/`, no empty, `.` or `..` segments, no backslash or control characters.
 */
export function repoPathProblem(path: string): string | null {
  if (path.length === 0) return 'must not be empty';
  if (path.length > 1024) return 'must be at most 1024 characters';
  if (path.startsWith('/')) return 'must not start with "/"';
  if (path.endsWith('/')) return 'must not end with "/"';
  if (/[\x00-\x1f\x7f\\]/.test(path)) return 'must not contain control characters or "\\"';
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return 'must not contain empty, "." or ".." segments';
  }
  return null;
}

/** A file path inside a repository (see {@link repoPathProblem}). */
export const repoPath = z.string().superRefine((p, ctx) => {
  const problem = repoPathProblem(p);
  if (problem) ctx.addIssue({ code: 'custom', message: `path ${problem}` });
});

/** An issue or pull request number. */
export const issueNumber = z.number().int().min(1).max(2 ** 31 - 1);

/** A label name: 1–50 characters, no commas (GitHub joins label filters with commas) or control characters. */
export const label = z
  .string()
  .min(1)
  .max(50)
  .regex(/^[^,\x00-\x1f\x7f]+$/, 'must not contain commas or control characters');

/** An issue or pull request title. */
export const title = z.string().trim().min(1).max(MAX_TITLE);

/** An issue, comment or pull request body. */
export const body = z.string().max(MAX_BODY);

/** Page size sent to GitHub (`per_page`), 1–100. */
export const perPage = z.number().int().min(1).max(100);

/** Most items a list action returns, across pages; 1–1000, default 100. */
export const limit = z.number().int().min(1).max(1000).default(100);

/** An ISO 8601 timestamp (`since` filters). */
export const isoTime = z.iso.datetime({ offset: true });

/** The `owner` and `repo` every action takes; the action's resource is `owner/repo`. */
export const repoTarget = { owner, repo };

/** The resource string of an action: `owner/repo`. */
export function repoResource(p: { owner: string; repo: string }): string {
  return `${p.owner}/${p.repo}`;
}

/**
 * Whether `value` (an `owner/repo`) lies inside a grant's resource patterns, with the grant
 * patterns' own rule (docs/grants.md): a pattern matches exactly, or by prefix when it ends in `*`
 * (a lone `*` matches everything), case-sensitively. `patterns` null means any resource (a grant
 * without `resources`). Used to keep a listing within the grant that allowed it.
 */
export function grantCovers(patterns: readonly string[] | null, value: string): boolean {
  if (patterns === null) return true;
  return patterns.some((p) => (p.endsWith('*') ? value.startsWith(p.slice(0, -1)) : p === value));
}
