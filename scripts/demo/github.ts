/**
 * The demo's recorded GitHub: @octokit/fixtures-server's middleware on an express server bound to
 * 127.0.0.1 on a free port, replaying the same recordings the GitHub provider's tests replay
 * (`@octokit/fixtures`' `get-repository`, and `test/fixtures/github/comment-issue.json` and
 * `merge-pull.json`, written by `test/fixtures/github/build.ts`). No request leaves the machine.
 *
 * The three recordings form one scenario, loaded once: the server answers each recorded request
 * once, in the recorded order (the demo's order), and any other request with a 404 naming the one
 * it expected, so a refused call that reached GitHub would show. The scenario lives for
 * {@link SCENARIO_TTL_MS}, far longer than the demo, so it cannot expire mid-demo.
 */
import fs from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fixturesServer from '@octokit/fixtures-server';
import express from 'express';
import { packagePath } from '../../src/platform/paths.js';

/** The token every recording expects (`authorization: token …`); it is no real credential. */
export const FIXTURE_TOKEN = '0000000000000000000000000000000000000001';
/** The account the recordings live under. */
export const ORG = 'octokit-fixture-org';
/** How long the loaded scenario stays replayable, in ms (1 hour). */
export const SCENARIO_TTL_MS = 60 * 60_000;

/** The running recorded GitHub. */
export interface RecordedGitHub {
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  /** Stands in for `https://api.github.com`: the broker's `GITHUB_API_URL`. */
  apiUrl: string;
  /**
   * The recorded requests not yet replayed (`METHOD path` lines, empty once all were), asked with a
   * request that can never match, so asking changes nothing.
   */
  pending(): Promise<string[]>;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

/** Reads one recording file: an array of @octokit/fixtures entries (`{scope, method, path, …}`). */
function readRecording(file: string): unknown[] {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown[];
}

/**
 * The recordings the demo replays, concatenated: a repository read, an issue comment, and a
 * pull-request merge with its checks.
 * @throws Error when a recording file is missing (an install without devDependencies: run `npm ci`).
 */
export function demoRecordings(): unknown[] {
  const shipped = path.dirname(fileURLToPath(import.meta.resolve('@octokit/fixtures')));
  return [
    ...readRecording(path.join(shipped, 'scenarios/api.github.com/get-repository/normalized-fixture.json')),
    ...readRecording(packagePath('test/fixtures/github/comment-issue.json')),
    ...readRecording(packagePath('test/fixtures/github/merge-pull.json')),
  ];
}

/**
 * Starts the recorded GitHub on 127.0.0.1 (a free port) and loads the demo's scenario.
 * @throws Error when the server cannot listen or the scenario cannot be loaded.
 */
export async function startRecordedGitHub(): Promise<RecordedGitHub> {
  const app = express();
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  try {
    app.use(fixturesServer({ fixturesUrl: origin, logLevel: 'silent', ttl: SCENARIO_TTL_MS, fixtures: { demo: demoRecordings() } }));
    const res = await fetch(`${origin}/fixtures`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ scenario: 'demo' }),
      signal: AbortSignal.timeout(10_000),
    });
    if (res.status !== 201) throw new Error(`loading the recorded scenario: ${res.status} ${await res.text()}`);
    const { id, url } = (await res.json()) as { id: string; url: string };
    return {
      origin,
      apiUrl: url,
      async pending() {
        const probe = await fetch(`${url}/__consumed_probe__`, { headers: { accept: 'application/vnd.github.v3+json' }, signal: AbortSignal.timeout(10_000) });
        const body = (await probe.json()) as { error?: string; detail?: { pending?: string[] } };
        // A fully replayed scenario is dropped by the server, so the probe no longer finds it.
        if (body.error === `Fixture "${id}" not found`) return [];
        return body.detail?.pending ?? [`unexpected probe answer ${probe.status}: ${JSON.stringify(body)}`];
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
