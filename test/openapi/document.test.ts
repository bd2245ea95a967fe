/**
 * `GET /openapi.json` and `GET /docs`: the document lists every route Hono mounted (the same
 * method and path, `:id` written `{id}`) and nothing else, it is valid OpenAPI 3.1 according to
 * `@seriousme/openapi-schema-validator`, every operation names its security and error answers,
 * and the reference page renders that document (from the broker itself when the Scalar bundle is
 * installed).
 */
import fs from 'node:fs';
import path from 'node:path';
import { OpenAPIHono } from '@hono/zod-openapi';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app/app.js';
import { BUNDLE_PATH, referenceRoutes, scalarBundle } from '../../src/app/reference.js';
import type { AppEnv } from '../../src/platform/http/env.js';
import { startBroker, tempDir } from '../helpers/harness.js';

const broker = await startBroker();
afterAll(() => broker.stop());

async function get(p: string): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(new URL(p, broker.url));
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const served = await get('/openapi.json');
const doc = JSON.parse(served.text) as {
  openapi: string;
  info: { title: string; version: string };
  servers: { url: string }[];
  tags: { name: string }[];
  components: { securitySchemes: Record<string, { type: string }> };
  paths: Record<string, Record<string, { security?: Record<string, string[]>[]; tags?: string[]; operationId?: string; responses: Record<string, unknown>; parameters?: { name: string; in: string; deprecated?: boolean }[] }>>;
};
const operations = Object.entries(doc.paths).flatMap(([p, ops]) => Object.entries(ops).map(([method, op]) => ({ key: `${method.toUpperCase()} ${p}`, op })));

describe('GET /openapi.json', () => {
  it('answers 200 JSON without credentials', () => {
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('lists every route Hono mounted, with the same method and path, and nothing else', () => {
    const mounted = new Set<string>();
    // The web console (/console) is HTML for people, not an API operation.
    for (const r of createApp(broker.deps).routes) if (r.method !== 'ALL' && r.path !== '/console' && !r.path.startsWith('/console/')) mounted.add(`${r.method} ${r.path.replace(/:([^/]+)/g, '{$1}')}`);
    expect(operations.map((o) => o.key).sort()).toEqual([...mounted].sort());
    expect(mounted.size).toBeGreaterThanOrEqual(32);
  });

  it('is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)', async () => {
    const result = await new Validator().validate(doc as unknown as Parameters<Validator["validate"]>[0]);
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toBe('3.1.0');
  });

  it("names the package, a relative server, both security schemes and each module's tag", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../package.json'), 'utf8')) as { name: string; version: string };
    expect(doc.info).toMatchObject({ title: pkg.name, version: pkg.version });
    expect(doc.servers).toEqual([{ url: '/' }]);
    expect(doc.components.securitySchemes).toMatchObject({ rfc9421: { type: 'apiKey' }, bearer: { type: 'http' } });
    const tags = new Set(doc.tags.map((t) => t.name));
    for (const { key, op } of operations) {
      expect(op.tags?.length, key).toBe(1);
      expect(tags.has(op.tags![0]!), key).toBe(true);
      expect(op.operationId, key).toEqual(expect.any(String));
    }
  });

  it('gives /v1/* operations a security requirement and their 401s, and the others none', () => {
    for (const { key, op } of operations) {
      const v1 = key.split(' ')[1]!.startsWith('/v1/');
      if (v1) {
        expect(op.security?.length, key).toBeGreaterThan(0);
        for (const req of op.security!) for (const name of Object.keys(req)) expect(Object.keys(doc.components.securitySchemes), key).toContain(name);
        expect(Object.keys(op.responses), key).toEqual(expect.arrayContaining(['401', '403']));
      } else {
        expect(op.security, key).toEqual([]);
      }
    }
  });

  it('marks the old paging parameters deprecated', () => {
    const deprecated = operations.flatMap(({ key, op }) => (op.parameters ?? []).filter((p) => p.deprecated).map((p) => `${key} ${p.name}`));
    expect(deprecated.sort()).toEqual(
      [
        'GET /v1/audit since',
        'GET /v1/calls before',
        'GET /v1/dispatches starting_after',
        'GET /v1/ext/calls before',
        'GET /v1/grants starting_after',
        'GET /v1/tasks starting_after',
        'GET /v1/tokens/revocations starting_after',
      ].sort(),
    );
  });
});

describe('GET /docs', () => {
  it('answers 200 HTML that renders /openapi.json', async () => {
    const page = await get('/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.text).toContain('"url": "/openapi.json"');
    expect(page.text).toMatch(/createApiReference/);
  });

  it('serves the Scalar bundle itself, and points the page at it, when the package is installed', async () => {
    const root = path.join(tempDir('scalar-'), 'api-reference');
    fs.mkdirSync(path.join(root, 'dist', 'browser'), { recursive: true });
    expect(scalarBundle(root)).toBeNull();
    fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: '@scalar/api-reference', browser: './dist/browser/standalone.js' }));
    expect(scalarBundle(root)).toBeNull();
    fs.writeFileSync(path.join(root, 'dist', 'browser', 'standalone.js'), 'window.Scalar = {};');
    const bundle = scalarBundle(root);
    expect(bundle).toBe(path.join(root, 'dist', 'browser', 'standalone.js'));

    const app = new OpenAPIHono<AppEnv>();
    app.route('/', referenceRoutes(app, bundle));
    const page = await (await app.request('/docs')).text();
    expect(page).toContain(`<script src="${BUNDLE_PATH}"></script>`);
    expect(page).not.toContain('cdn.jsdelivr.net');
    const script = await app.request(BUNDLE_PATH);
    expect([script.status, script.headers.get('content-type'), await script.text()]).toEqual([200, 'text/javascript; charset=utf-8', 'window.Scalar = {};']);
    const local = (await (await app.request('/openapi.json')).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(local.paths).sort()).toEqual(['/docs', BUNDLE_PATH, '/openapi.json'].sort());
  });
});
