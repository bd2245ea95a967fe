/**
 * The API's own description: `GET /openapi.json`, the OpenAPI 3.1 document built from every
 * route contract the app mounted (`OpenAPIHono` merges the modules' registries), and
 * `GET /docs`, a reference page (Scalar, `@scalar/hono-api-reference`) that renders it. Both are
 * unauthenticated, like `/health`, and outside `/v1/*`.
 *
 * The page is static HTML whose script renders the document in the browser. It loads the
 * `@scalar/api-reference` standalone bundle from the broker itself when that package is
 * installed (`GET /docs/scalar.js`), so the page works offline; otherwise from Scalar's CDN
 * (jsDelivr).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { Scalar } from '@scalar/hono-api-reference';
import { z } from 'zod';
import { createRoute, createRouter, json, mount, publicProblems, SECURITY_SCHEMES, text, type Operation, type Router } from '../platform/http/contract.js';
import type { AppEnv } from '../platform/http/env.js';
import { packagePath } from '../platform/paths.js';

/** The document's tags: one per module, in the order the reference lists them. */
const TAGS = [
  { name: 'calls', description: 'External calls: agent groups call provider actions through the decision order; tokens read every call.' },
  { name: 'grants', description: 'Grants and approvals: who may call what, at which level, until when.' },
  { name: 'kernel', description: 'The orchestration kernel: tasks, gates and dispatches.' },
  { name: 'runner', description: 'Runs: the agent processes the broker starts for dispatches (policies/runners.json).' },
  { name: 'switches', description: "Operators' kill switches: stop all external calls, or one group's, provider's or action's, reversibly." },
  { name: 'webhooks', description: 'Signed webhook notifications (policies/webhooks.json): delivery state and retries.' },
  { name: 'identity', description: 'Agent groups and their signing keys.' },
  { name: 'tokens', description: "Operators' and auditors' bearer tokens and their revocations." },
  { name: 'audit', description: 'The hash-chained audit trail.' },
  { name: 'operations', description: 'Liveness, readiness and metrics (no credentials).' },
  { name: 'reference', description: 'This document and its reference page (no credentials).' },
];

/** The package's name, version and description (its `package.json`), for the document's `info`. */
function packageInfo(): { title: string; version: string; description: string } {
  const pkg = JSON.parse(fs.readFileSync(packagePath('package.json'), 'utf8')) as { name: string; version: string; description?: string };
  return { title: pkg.name, version: pkg.version, description: pkg.description ?? '' };
}

/**
 * The OpenAPI 3.1 document of `app`: every registered operation, the two security schemes
 * (`rfc9421`, `bearer`), one tag per module, and a relative server (`/`), so it describes
 * whichever host serves it.
 */
export function openapiDocument(app: OpenAPIHono<AppEnv>): ReturnType<OpenAPIHono<AppEnv>['getOpenAPI31Document']> {
  return app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: packageInfo(),
    servers: [{ url: '/' }],
    tags: TAGS,
  });
}

/**
 * The `@scalar/api-reference` standalone bundle on disk (the file its `package.json` names in
 * `browser`), or null when the package is not installed under `root`.
 */
export function scalarBundle(root: string = packagePath('node_modules', '@scalar', 'api-reference')): string | null {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { browser?: unknown; jsdelivr?: unknown };
    const entry = typeof pkg.jsdelivr === 'string' ? pkg.jsdelivr : typeof pkg.browser === 'string' ? pkg.browser : null;
    if (entry === null) return null;
    const file = path.resolve(root, entry);
    return fs.statSync(file).isFile() ? file : null;
  } catch {
    return null;
  }
}

/** Where the reference page loads the bundle from when the broker serves it. */
export const BUNDLE_PATH = '/docs/scalar.js';

/**
 * The routes `GET /openapi.json` and `GET /docs` (and `GET /docs/scalar.js` when `bundle` is
 * given), registered in the document themselves. Registers the security schemes on `app`.
 * @param app the app whose document is served; built once, on first request, after every route is mounted.
 * @param bundle the standalone bundle to serve ({@link scalarBundle}); null loads it from the CDN.
 */
export function referenceRoutes(app: OpenAPIHono<AppEnv>, bundle: string | null = scalarBundle()): Router {
  for (const [name, scheme] of Object.entries(SECURITY_SCHEMES)) app.openAPIRegistry.registerComponent('securitySchemes', name, scheme);
  let document: ReturnType<typeof openapiDocument> | undefined;
  const page = Scalar<AppEnv>({ url: '/openapi.json', pageTitle: `${packageInfo().title} API`, ...(bundle ? { cdn: BUNDLE_PATH } : {}) });
  const ops: Operation[] = [
    {
      route: createRoute({
        method: 'get',
        path: '/openapi.json',
        operationId: 'openapi',
        tags: ['reference'],
        summary: 'This OpenAPI 3.1 document',
        security: [],
        responses: { 200: json('The OpenAPI 3.1 document of every route.', z.object({ openapi: z.string(), info: z.object({ title: z.string(), version: z.string() }) }).catchall(z.unknown())), ...publicProblems() },
      }),
      handler: (c) => c.json((document ??= openapiDocument(app))),
    },
    {
      route: createRoute({
        method: 'get',
        path: '/docs',
        operationId: 'docs',
        tags: ['reference'],
        summary: 'The API reference page',
        security: [],
        responses: { 200: text('An HTML page that renders /openapi.json.', 'text/html'), ...publicProblems() },
      }),
      handler: (c) => page(c, async () => {}) as Promise<Response>,
    },
  ];
  if (bundle) {
    let code: Buffer | undefined;
    ops.push({
      route: createRoute({
        method: 'get',
        path: BUNDLE_PATH,
        operationId: 'docsBundle',
        tags: ['reference'],
        summary: "The reference page's script (@scalar/api-reference, served locally)",
        security: [],
        responses: { 200: text('The standalone bundle.', 'text/javascript'), ...publicProblems() },
      }),
      handler: (c) => c.body(new Uint8Array((code ??= fs.readFileSync(bundle))), 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=86400' }),
    });
  }
  return mount(createRouter(), ...ops);
}
