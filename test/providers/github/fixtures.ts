/**
 * Recorded GitHub traffic for the provider's tests: @octokit/fixtures-server's middleware on an
 * express server bound to 127.0.0.1:0 inside the test process, serving the shipped recordings the
 * actions use (one patched, one derived) and the scenario files of test/fixtures/github/.
 */
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Server } from 'node:http';
import express from 'express';
import fixturesServer from '@octokit/fixtures-server';
import pino from 'pino';
import type { ActionContext, Provider } from '../../../src/providers/contract.js';
import { generatedScenarios, recorded, type FixtureEntry } from '../../fixtures/github/build.js';

/** The token every recording expects (`authorization: token …`). */
export const FIXTURE_TOKEN = '0000000000000000000000000000000000000001';
/** The account the recordings live under. */
export const ORG = 'octokit-fixture-org';

const SCENARIO_DIR = path.resolve(import.meta.dirname, '../../fixtures/github');

/**
 * Every scenario the tests can load, by name:
 * - shipped recordings: get-repository, get-content, paginate-issues, search-issues,
 *   add-labels-to-issue;
 * - `get-content` patched: Octokit strips the trailing `/` of the root listing's path
 *   (`/contents/` is requested as `/contents`);
 * - `paginate-issues-two-pages`: the first two pages of paginate-issues (a `limit` that stops early);
 * - every `*.json` of test/fixtures/github/;
 * - the scenarios build.ts generates instead of writing (large bodies: `get-content-large`).
 */
export function allScenarios(): Record<string, FixtureEntry[]> {
  const out: Record<string, FixtureEntry[]> = {};
  for (const name of ['get-repository', 'get-content', 'paginate-issues', 'search-issues', 'add-labels-to-issue']) {
    out[name] = recorded(name);
  }
  for (const e of out['get-content']!) e.path = e.path.replace(/\/contents\/$/, '/contents');
  out['paginate-issues-two-pages'] = out['paginate-issues']!.slice(0, 2);
  for (const file of fs.readdirSync(SCENARIO_DIR).filter((f) => f.endsWith('.json'))) {
    out[path.basename(file, '.json')] = JSON.parse(fs.readFileSync(path.join(SCENARIO_DIR, file), 'utf8')) as FixtureEntry[];
  }
  return { ...out, ...generatedScenarios() };
}

/** A loaded scenario. */
export interface Scenario {
  /** Stands in for `https://api.github.com`. */
  url: string;
  /**
   * The interactions not yet replayed, empty when the scenario was fully consumed. Asks the
   * fixtures server with a request that can never match, so it changes nothing.
   */
  pending(): Promise<string[]>;
}

/** The running fixtures server. */
export interface GitHubFixtures {
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  /** `POST /fixtures {"scenario": name}`. */
  load(name: string): Promise<Scenario>;
  close(): Promise<void>;
}

/**
 * Starts the fixtures server on 127.0.0.1:0 with {@link allScenarios} and `extra` (e.g. one
 * scenario concatenating others, for a broker whose `GITHUB_API_URL` is fixed).
 */
export async function startGitHubFixtures(extra: Record<string, FixtureEntry[]> = {}): Promise<GitHubFixtures> {
  const app = express();
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  app.use(fixturesServer({ fixturesUrl: origin, logLevel: 'silent', ttl: 10 * 60_000, fixtures: { ...allScenarios(), ...extra } }));
  return {
    origin,
    async load(name) {
      const res = await fetch(`${origin}/fixtures`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ scenario: name }),
      });
      if (res.status !== 201) throw new Error(`loading scenario ${name}: ${res.status} ${await res.text()}`);
      const { id, url } = (await res.json()) as { id: string; url: string };
      return {
        url,
        async pending() {
          const probe = await fetch(`${url}/__consumed_probe__`, { headers: { accept: 'application/vnd.github.v3+json' } });
          const body = (await probe.json()) as { error?: string; detail?: { pending?: string[] } };
          if (body.error === `Fixture "${id}" not found`) return [];
          return body.detail?.pending ?? [`unexpected probe answer ${probe.status}: ${JSON.stringify(body)}`];
        },
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An action context for calling `execute` directly (no broker around it). */
export function testContext(signal: AbortSignal = new AbortController().signal): ActionContext {
  return { signal, group: 'developer', requestId: 'test', taskId: null, grantResources: null, log: pino({ level: 'silent' }) };
}

/**
 * Validates `params` with the action's schema (as the decision path does) and runs it.
 * @throws Error for an unknown action; the zod error for invalid params; whatever `execute` throws.
 */
export async function runAction(provider: Provider, id: string, params: unknown, ctx: ActionContext = testContext()): Promise<unknown> {
  const action = provider.actions.find((a) => a.id === id);
  if (!action) throw new Error(`no action ${id}`);
  return action.execute(action.params.parse(params), ctx);
}
