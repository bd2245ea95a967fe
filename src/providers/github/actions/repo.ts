/**
 * Repository reads (L1): `github.list_repos` (the repositories the host's credential reaches, kept
 * within the grant), `github.get_repo` and `github.get_content`.
 */
import { z } from 'zod';
import { defineAction, type ActionDefinition } from '../../contract.js';
import { redactString } from '../../../platform/audit/redact.js';
import type { GitHubClient } from '../client.js';
import { collect, decodeUtf8, fitString, readPrefix, type ListResult, type StreamPrefix } from '../results.js';
import { grantCovers, limit, owner, perPage, ref, repoPath, repoResource, repoTarget } from '../schemas.js';

/** One repository in `github.list_repos`. */
export interface RepoSummary {
  /** `owner/repo`, spelled as GitHub spells it. */
  full_name: string;
  owner: string;
  name: string;
  description: string | null;
  private: boolean;
  visibility: string | null;
  default_branch: string | null;
  archived: boolean;
  fork: boolean;
  html_url: string;
  pushed_at: string | null;
}

/** Shape of the GitHub repository fields {@link RepoSummary} reads. */
interface GitHubRepoLike {
  full_name: string;
  name: string;
  owner: { login: string };
  description?: string | null;
  private: boolean;
  visibility?: string;
  default_branch?: string;
  archived?: boolean;
  fork: boolean;
  html_url: string;
  pushed_at?: string | null;
}

/** Result of `github.get_repo`. */
export interface RepoResult {
  full_name: string;
  description: string | null;
  private: boolean;
  visibility: string | null;
  default_branch: string;
  archived: boolean;
  fork: boolean;
  topics: string[];
  open_issues_count: number;
  stargazers_count: number;
  forks_count: number;
  html_url: string;
  pushed_at: string | null;
  updated_at: string | null;
}

/** One entry of a directory listing. */
export interface ContentEntry {
  name: string;
  path: string;
  /** `file`, `dir`, `symlink` or `submodule`. */
  type: string;
  /** Bytes (0 for directories). */
  size: number;
  sha: string;
}

/**
 * Result of `github.get_content`: a file's text (or base64 for binary files) or a directory listing.
 * For a file, `size` is its size in bytes and `truncated: true` says `content` is only its front
 * (a clean prefix, within `GITHUB_RESULT_MAX_BYTES` of JSON; only about that much is read from
 * GitHub); `size` is then GitHub's `content-length`, or the bytes read (a lower bound) when GitHub
 * sent none or sent it for a compressed body.
 */
export type ContentResult =
  | { type: 'file'; path: string; ref: string | null; encoding: 'utf-8' | 'base64'; size: number; content: string; truncated: boolean }
  | { type: 'dir'; path: string; ref: string | null; items: ContentEntry[]; truncated: boolean }
  | { type: 'symlink' | 'submodule'; path: string; ref: string | null; target: string | null };

const listReposParams = z.strictObject({
  /** Only this account's repositories (user or organisation); omitted: every one the credential reaches. */
  owner: owner.optional(),
  per_page: perPage.optional(),
  limit,
});

/**
 * The resource of `github.list_repos`: `<owner>/*` (every repository of the account, which a grant
 * on `acme/*` covers and one on `acme/api` alone does not), or `*` without an owner (every
 * repository the credential reaches: only a grant on any resource covers it).
 */
export function listReposResource(p: { owner?: string | undefined }): string {
  return p.owner === undefined ? '*' : `${p.owner}/*`;
}

const repoSummary = (r: GitHubRepoLike): RepoSummary => ({
  full_name: r.full_name,
  owner: r.owner.login,
  name: r.name,
  description: r.description ?? null,
  private: r.private,
  visibility: r.visibility ?? null,
  default_branch: r.default_branch ?? null,
  archived: r.archived ?? false,
  fork: r.fork,
  html_url: r.html_url,
  pushed_at: r.pushed_at ?? null,
});

const getRepoParams = z.strictObject({ ...repoTarget });

const getContentParams = z.strictObject({
  ...repoTarget,
  /** File or directory path; omitted or "" is the repository root. */
  path: z.union([z.literal(''), repoPath]).default(''),
  /** Branch, tag or commit SHA; the default branch when omitted. */
  ref: ref.optional(),
});

/** The repository read actions. */
export function repoActions(gh: GitHubClient): ActionDefinition<any, unknown>[] {
  return [
    defineAction({
      id: 'github.list_repos',
      level: 1,
      description:
        "List the repositories the host's credential reaches (a GitHub App's installation, or the token's user), of one owner or all, within the grant's resources, up to `limit` (default 100).",
      params: listReposParams,
      idempotent: true,
      resource: listReposResource,
      summarize: (p) => `list repositories${p.owner ? ` of ${p.owner}` : ''}`,
      execute: (p, ctx) =>
        gh.runAccount(ctx, { metadata: 'read' }, async ({ octokit, credential }): Promise<ListResult<RepoSummary>> => {
          const query = p.per_page === undefined ? {} : { per_page: p.per_page };
          const pages = (
            credential === 'app'
              ? octokit.paginate.iterator(octokit.rest.apps.listReposAccessibleToInstallation, query)
              : octokit.paginate.iterator(octokit.rest.repos.listForAuthenticatedUser, query)
          ) as AsyncIterable<{ data: GitHubRepoLike[] }>;
          // GitHub logins are case-insensitive; grant patterns are not (a pattern never matches more
          // than it spells out), so a repository leaves the broker only when the grant that allowed
          // this call covers its full name as GitHub spells it.
          const wanted = p.owner?.toLowerCase();
          const inScope = (r: GitHubRepoLike) =>
            (wanted === undefined || r.owner.login.toLowerCase() === wanted) && grantCovers(ctx.grantResources, r.full_name);
          const scoped = (async function* () {
            for await (const page of pages) yield { data: page.data.filter(inScope) };
          })();
          return collect(scoped, p.limit, repoSummary);
        }),
    }),
    defineAction({
      id: 'github.get_repo',
      level: 1,
      description: 'Read a repository: description, visibility, default branch, counts.',
      params: getRepoParams,
      idempotent: true,
      resource: repoResource,
      summarize: (p) => `get repository ${p.owner}/${p.repo}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { metadata: 'read' }, async ({ octokit }): Promise<RepoResult> => {
          const { data: r } = await octokit.rest.repos.get({ owner: p.owner, repo: p.repo });
          return {
            full_name: r.full_name,
            description: r.description,
            private: r.private,
            visibility: r.visibility ?? null,
            default_branch: r.default_branch,
            archived: r.archived,
            fork: r.fork,
            topics: r.topics ?? [],
            open_issues_count: r.open_issues_count,
            stargazers_count: r.stargazers_count,
            forks_count: r.forks_count,
            html_url: r.html_url,
            pushed_at: r.pushed_at,
            updated_at: r.updated_at,
          };
        }),
    }),
    defineAction({
      id: 'github.get_content',
      level: 1,
      description: 'Read a file (text, or base64 when binary; size-capped) or list a directory.',
      params: getContentParams,
      idempotent: true,
      resource: repoResource,
      summarize: (p) => `get content ${p.owner}/${p.repo}:${p.path || '/'}${p.ref ? `@${p.ref}` : ''}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { contents: 'read' }, async ({ octokit }): Promise<ContentResult> => {
          const at = p.ref ?? null;
          const max = gh.settings.maxResultBytes;
          // The root is always a directory: its JSON listing, parsed by Octokit.
          if (p.path === '') {
            const { data } = await octokit.rest.repos.getContent({ owner: p.owner, repo: p.repo, path: '', ref: p.ref });
            return contentResult(p.path, at, data as unknown, max);
          }
          // Anything else is asked for raw and its body left unread by Octokit (GitHub serves files
          // up to 100 MB raw): only the front of a file is read. GitHub still answers a directory,
          // symlink or submodule with JSON (bounded: at most 1 000 entries), read whole.
          const res = await octokit.rest.repos.getContent({
            owner: p.owner,
            repo: p.repo,
            path: p.path,
            ref: p.ref,
            mediaType: { format: 'raw' },
            request: { parseSuccessResponseBody: false },
          });
          const body = res.data as unknown as ReadableStream<Uint8Array> | null;
          if (isJson(res.headers['content-type'])) return contentResult(p.path, at, body ? await new Response(body).json() : null, max);
          const front = body ? await readPrefix(body, max + REDACTION_MARGIN) : { bytes: new Uint8Array(0), complete: true, bytesRead: 0 };
          return fileResult(p.path, at, front, front.complete ? null : declaredSize(res.headers), max);
        }),
    }),
  ];
}

/**
 * Bytes read past the result cap before a file is cut to fit it, so that a secret straddling the
 * cut is still whole when it is redacted (a PEM private key is under 4 KiB).
 */
const REDACTION_MARGIN = 8 * 1024;

/** Whether an answer is JSON, as Octokit decides it (`application/json`; a raw file never is). */
function isJson(contentType: string | number | undefined): boolean {
  return String(contentType ?? '').split(';')[0]!.trim().toLowerCase() === 'application/json';
}

/**
 * The file's real size as GitHub declared it (`content-length`), or null when it did not say or
 * said it of a compressed body (`content-encoding` other than identity).
 */
function declaredSize(headers: Record<string, string | number | undefined>): number | null {
  const encoding = String(headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  const length = Number(headers['content-length']);
  return encoding === 'identity' && Number.isSafeInteger(length) && length >= 0 ? length : null;
}

/**
 * A file result from the front of its bytes: UTF-8 text when the bytes read are valid UTF-8 (up
 * to the last complete character when the file was cut), else base64. The text is redacted before
 * it is cut to fit `maxBytes` of JSON (the call's `capResult` redacts and caps again). `size` is
 * the file's size in bytes: exact when the whole file was read or GitHub declared it, else the
 * bytes read (a lower bound).
 */
function fileResult(path: string, ref: string | null, front: StreamPrefix, declared: number | null, maxBytes: number): ContentResult {
  const cut = !front.complete;
  const size = cut ? (declared ?? front.bytesRead) : front.bytes.length;
  const text = decodeUtf8(front.bytes, cut);
  if (text !== null) {
    const file = { type: 'file' as const, path, ref, encoding: 'utf-8' as const, size, content: redactString(text), truncated: cut };
    return fitString(file, 'content', maxBytes);
  }
  const file = { type: 'file' as const, path, ref, encoding: 'base64' as const, size, content: Buffer.from(front.bytes).toString('base64'), truncated: cut };
  return fitString(file, 'content', maxBytes, 4);
}

function contentResult(path: string, ref: string | null, data: unknown, maxBytes: number): ContentResult {
  if (Array.isArray(data)) {
    const items = data.map((e: { name: string; path: string; type: string; size?: number; sha: string }) => ({
      name: e.name,
      path: e.path,
      type: e.type,
      size: e.size ?? 0,
      sha: e.sha,
    }));
    return { type: 'dir', path, ref, items, truncated: false };
  }
  const entry = (data ?? {}) as { type?: string; target?: string; submodule_git_url?: string; content?: string; encoding?: string; size?: number };
  if (entry.type === 'symlink' || entry.type === 'submodule') {
    return { type: entry.type, path, ref, target: entry.target ?? entry.submodule_git_url ?? null };
  }
  // A JSON file object (GitHub ignores the raw media type for some content): decode its base64
  // (GitHub inlines it only for files up to 1 MB).
  const bytes = Buffer.from(entry.content ?? '', 'base64');
  return fileResult(path, ref, { bytes, complete: true, bytesRead: bytes.length }, null, maxBytes);
}
