/**
 * Repository reads: `github.get_repo` and `github.get_content` (L1).
 */
import { z } from 'zod';
import { defineAction, type ActionDefinition } from '../../../src/broker/catalog.js';
import type { GitHubClient } from '../client.js';
import { ref, repoPath, repoResource, repoTarget } from '../schemas.js';

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

/** Result of `github.get_content`: a file's text (or base64 for binary files) or a directory listing. */
export type ContentResult =
  | { type: 'file'; path: string; ref: string | null; encoding: 'utf-8' | 'base64'; size: number; content: string; truncated: boolean }
  | { type: 'dir'; path: string; ref: string | null; items: ContentEntry[]; truncated: boolean }
  | { type: 'symlink' | 'submodule'; path: string; ref: string | null; target: string | null };

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
          // The root is always a directory; anything else is asked for raw, and GitHub still
          // answers a directory with its JSON listing.
          const { data } = await octokit.rest.repos.getContent({
            owner: p.owner,
            repo: p.repo,
            path: p.path,
            ref: p.ref,
            ...(p.path === '' ? {} : { mediaType: { format: 'raw' } }),
          });
          return contentResult(p.path, at, data as unknown);
        }),
    }),
  ];
}

function contentResult(path: string, ref: string | null, data: unknown): ContentResult {
  if (typeof data === 'string') {
    return { type: 'file', path, ref, encoding: 'utf-8', size: Buffer.byteLength(data, 'utf8'), content: data, truncated: false };
  }
  if (data instanceof ArrayBuffer) {
    const bytes = Buffer.from(data);
    const text = new TextDecoder('utf-8', { fatal: true });
    try {
      return { type: 'file', path, ref, encoding: 'utf-8', size: bytes.length, content: text.decode(bytes), truncated: false };
    } catch {
      return { type: 'file', path, ref, encoding: 'base64', size: bytes.length, content: bytes.toString('base64'), truncated: false };
    }
  }
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
  const entry = data as { type?: string; target?: string; submodule_git_url?: string; content?: string; encoding?: string; size?: number };
  if (entry.type === 'symlink' || entry.type === 'submodule') {
    return { type: entry.type, path, ref, target: entry.target ?? entry.submodule_git_url ?? null };
  }
  // A JSON file object (GitHub ignores the raw media type for some content): decode its base64.
  const raw = Buffer.from(entry.content ?? '', 'base64');
  return contentResult(path, ref, raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}
