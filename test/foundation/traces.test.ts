/**
 * Traces, against real parts: the real `broker serve` process (the `dist/` build) with
 * `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an OTLP/HTTP receiver in this test process (a real HTTP
 * server on an ephemeral port taking `POST /v1/traces`, JSON as the exporter sends by default), a
 * GitHub stand-in (@octokit/fixtures-server) as the provider, one signed call. The graceful stop
 * (SIGTERM) exports the last spans, so once the process has exited everything it would send has
 * arrived: no waiting on time.
 *
 * Checked: the span tree of the call (the request span is a root; `call.decision`, `call.claim`,
 * `call.provider` and `call.outcome` are its children, in its trace), their attributes, and that no
 * secret (group secrets, the bearer token, the host's GitHub token, the Signature header) appears
 * in any byte received. Then, without `OTEL_EXPORTER_OTLP_ENDPOINT` (but with the traces-only
 * endpoint that an SDK started anyway would use), nothing is exported.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerClient } from '../../src/client/index.js';
import { closeDeps, createDeps } from '../../src/app/deps.js';
import { loadConfig } from '../../src/platform/config.js';
import { createLogger } from '../../src/platform/log.js';
import { registerSecret } from '../../src/platform/audit/redact.js';
import { RedactingProcessor } from '../../src/platform/trace.js';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';
import { runCli, startServeProcess, type ServeProcess } from '../helpers/process.js';
import { allScenarios, FIXTURE_TOKEN, ORG, startGitHubFixtures, type GitHubFixtures } from '../providers/github/fixtures.js';

/** An OTLP/HTTP receiver: every body POSTed to /v1/traces, decoded from gzip when sent so. */
interface Receiver {
  url: string;
  bodies: Buffer[];
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const bodies: Buffer[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => void chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const raw = Buffer.concat(chunks);
      bodies.push(req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bodies,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** One span as OTLP/JSON encodes it. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number };
}

/** Every span of every export, with its attributes flattened and its resource's service.name. */
function spansOf(bodies: Buffer[]): (OtlpSpan & { attrs: Record<string, unknown>; service: unknown })[] {
  return bodies.flatMap((b) => {
    const doc = JSON.parse(b.toString('utf8')) as {
      resourceSpans: { resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
    };
    return doc.resourceSpans.flatMap((rs) => {
      const service = flatten(rs.resource.attributes)['service.name'];
      return rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => ({ ...s, attrs: flatten(s.attributes), service })));
    });
  });
}

function flatten(attributes: OtlpSpan['attributes']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of attributes ?? []) {
    const v = a.value;
    out[a.key] = v['stringValue'] ?? (v['intValue'] !== undefined ? Number(v['intValue']) : (v['boolValue'] ?? v['doubleValue']));
  }
  return out;
}

/** A process environment without the runner's own GITHUB_*, BROKER_* or OTEL_* variables. */
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('GITHUB_') && !k.startsWith('BROKER_') && !k.startsWith('OTEL_')) env[k] = v;
  }
  return { ...env, ...extra };
}

/** A signing client for `group` whose every sent Signature header value is kept in `signatures`. */
async function clientsFor(dataDir: string, url: string, signatures: string[]): Promise<{ clients: Record<string, BrokerClient>; groupSecrets: string[] }> {
  const deps = await createDeps(loadConfig({ BROKER_DATA_DIR: dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies') }), { logger: createLogger('silent') });
  const clients: Record<string, BrokerClient> = {};
  const groupSecrets: string[] = [];
  const recording = (u: string, init: RequestInit) => {
    const sig = new Headers(init.headers).get('signature');
    if (sig !== null) signatures.push(sig);
    return fetch(u, init);
  };
  for (const group of ['main', 'developer']) {
    const key = deps.keys.current(group);
    // The secret in each form it is written in: base64url (`.ipc_secret`), base64, hex.
    groupSecrets.push(key.secret.toString('base64url'), key.secret.toString('base64'), key.secret.toString('hex'));
    clients[group] = new BrokerClient({ baseUrl: url, credential: { keyid: key.keyid, secret: key.secret }, fetch: recording });
  }
  await closeDeps(deps);
  return { clients, groupSecrets };
}

async function stop(serve: ServeProcess): Promise<number | null> {
  if (serve.child.exitCode !== null) return serve.child.exitCode;
  serve.child.kill('SIGTERM');
  return serve.exited;
}

let fx: GitHubFixtures;

beforeAll(async () => {
  fx = await startGitHubFixtures();
}, 60_000);

afterAll(async () => {
  await fx?.close();
});

describe('traces exported with OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set', () => {
  let receiver: Receiver;
  let serve: ServeProcess | null = null;

  beforeAll(async () => {
    receiver = await startReceiver();
  });

  afterAll(async () => {
    if (serve) await stop(serve);
    await receiver.close();
  });

  it('exports the span tree of one signed call, and no secret in any byte', async () => {
    const sc = await fx.load('get-repository');
    const dataDir = tempDir('broker-traces-');
    const env = cleanEnv({
      BROKER_DATA_DIR: dataDir,
      BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'),
      BROKER_LOG_LEVEL: 'info',
      GITHUB_TOKEN: FIXTURE_TOKEN,
      GITHUB_API_URL: sc.url,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    });
    const token = await runCli(['token', '--role', 'operator', '--subject', 'alice'], env);
    expect(token.code, token.stderr).toBe(0);
    const bearerToken = token.stdout.trim();
    serve = await startServeProcess(env);
    expect(serve.output()).toContain('traces on');
    const signatures: string[] = [];
    const { clients, groupSecrets } = await clientsFor(dataDir, serve.url, signatures);

    let r = await clients['main']!.post('/v1/grants', { group: 'developer', provider: 'github', level: 1, resources: [`${ORG}/*`], reason: 'read the code' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    // An agent's trace context is not trusted: the request span stays a root of its own trace.
    const agentTrace = 'aa'.repeat(16);
    r = await clients['developer']!.post(
      '/v1/ext/calls',
      { action: 'github.get_repo', params: { owner: ORG, repo: 'hello-world' } },
      { headers: { traceparent: `00-${agentTrace}-${'bb'.repeat(8)}-01` } },
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const requestId: string = r.body.request_id;
    // A refused call: a write under a read grant.
    const refused = await clients['developer']!.post('/v1/ext/calls', { action: 'github.comment_issue', params: { owner: ORG, repo: 'hello-world', issue_number: 1, body: 'a params value never traced' } });
    expect(refused.status, JSON.stringify(refused.body)).toBe(403);
    // A bearer request with a query: the token is in a header, the query must not reach a span.
    const listed = await fetch(`${serve.url}/v1/grants?limit=5`, { headers: { authorization: `Bearer ${bearerToken}` } });
    expect(listed.status).toBe(200);

    expect(await stop(serve)).toBe(0);
    expect(receiver.bodies.length).toBeGreaterThan(0);

    const spans = spansOf(receiver.bodies);
    expect(new Set(spans.map((s) => s.service))).toEqual(new Set(['nanoclaw-broker']));
    const request = spans.find((s) => s.name === 'POST /v1/ext/calls');
    expect(request, spans.map((s) => s.name).join(', ')).toBeDefined();
    expect(request!.parentSpanId ?? '').toBe('');
    expect(request!.traceId).not.toBe(agentTrace);
    expect(request!.attrs).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/v1/ext/calls', 'http.response.status_code': 200 });
    expect(request!.attrs['broker.http_request_id']).toEqual(expect.any(String));

    const children = spans.filter((s) => s.parentSpanId === request!.spanId);
    expect(children.map((s) => s.name).sort()).toEqual(['call.claim', 'call.decision', 'call.outcome', 'call.provider']);
    for (const child of children) {
      expect(child.traceId).toBe(request!.traceId);
      expect(child.attrs).toMatchObject({ 'broker.group': 'developer', 'broker.request_id': requestId });
    }
    const byName = Object.fromEntries(children.map((s) => [s.name, s.attrs]));
    expect(byName['call.decision']).toMatchObject({ 'broker.decision': 'allowed', 'broker.action': 'github.get_repo', 'broker.provider': 'github', 'broker.level': 1 });
    expect(byName['call.claim']).toMatchObject({ 'broker.status': 'running', 'broker.action': 'github.get_repo' });
    expect(byName['call.provider']).toMatchObject({ 'broker.status': 'succeeded', 'broker.attempts': 1, 'broker.provider': 'github' });
    expect(byName['call.outcome']).toMatchObject({ 'broker.status': 'succeeded' });

    // The refused call: a decision and the refusal's audit write, nothing claimed or run.
    const refusedIn = spans.filter((s) => s.attrs['broker.request_id'] === refused.body.request_id);
    expect(refusedIn.map((s) => [s.name, s.attrs['broker.decision'] ?? s.attrs['broker.status'], s.attrs['broker.code']]).sort()).toEqual([
      ['call.decision', 'denied', refused.body.code],
      ['call.outcome', 'refused', refused.body.code],
    ]);

    // The grant's own request is another root, with no call spans under it.
    const grantSpan = spans.find((s) => s.name === 'POST /v1/grants');
    expect(grantSpan?.parentSpanId ?? '').toBe('');
    expect(spans.filter((s) => s.parentSpanId === grantSpan!.spanId)).toEqual([]);
    // The query is stripped from url.full.
    const list = spans.find((s) => s.name === 'GET /v1/grants');
    expect(list!.attrs['url.full']).toMatch(/\/v1\/grants$/);

    // The bytes as sent, and as text (JSON escapes a `/` of base64 as `\/` nowhere, but decode anyway).
    const raw = Buffer.concat(receiver.bodies).toString('latin1') + JSON.stringify(receiver.bodies.map((b) => JSON.parse(b.toString('utf8'))));
    const secrets: [string, string][] = [
      ...groupSecrets.map((v, i) => [`group secret ${i}`, v] as [string, string]),
      ['bearer token', bearerToken],
      ['GitHub token', FIXTURE_TOKEN],
      ...signatures.map((v, i) => [`Signature header ${i}`, v] as [string, string]),
      ...signatures.map((v, i) => [`signature bytes ${i}`, /:([^:]+):/.exec(v)![1]!] as [string, string]),
    ];
    expect(signatures.length).toBeGreaterThanOrEqual(2);
    for (const [name, value] of secrets) expect(raw.includes(value), `the ${name} is in an exported span`).toBe(false);
    expect(raw).not.toMatch(/authorization|signature-input|limit=5/i);
    // No params value either (the repository, the comment body).
    expect(raw).not.toMatch(/hello-world|a params value never traced/);
  }, 60_000);
});

describe('traces off without OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  it('exports nothing, even with the traces-only endpoint set', async () => {
    const receiver = await startReceiver();
    const sc = await fx.load('get-repository');
    const dataDir = tempDir('broker-traces-off-');
    const serve = await startServeProcess(
      cleanEnv({
        BROKER_DATA_DIR: dataDir,
        BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'),
        BROKER_LOG_LEVEL: 'info',
        GITHUB_TOKEN: FIXTURE_TOKEN,
        GITHUB_API_URL: sc.url,
        // Where an SDK started regardless would send its spans.
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
      }),
    );
    try {
      const { clients } = await clientsFor(dataDir, serve.url, []);
      let r = await clients['main']!.post('/v1/grants', { group: 'developer', provider: 'github', level: 1, resources: [`${ORG}/*`], reason: 'read the code' });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      r = await clients['developer']!.post('/v1/ext/calls', { action: 'github.get_repo', params: { owner: ORG, repo: 'hello-world' } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    } finally {
      expect(await stop(serve)).toBe(0);
      await receiver.close();
    }
    expect(receiver.bodies).toEqual([]);
    expect(serve.output()).not.toContain('traces on');
  }, 60_000);
});

describe('RedactingProcessor, the last check before export', () => {
  it('strips the query from url.full and redacts secrets in attributes, exception events and the status message', async () => {
    const secret = `s3cr3t-${'x'.repeat(24)}-registered`;
    registerSecret(secret);
    const exporter = new InMemorySpanExporter();
    const provider = new NodeTracerProvider({ spanProcessors: [new RedactingProcessor(), new SimpleSpanProcessor(exporter)] });
    const span = provider.getTracer('test').startSpan('GET /v1/things', { attributes: { 'url.full': `http://h/v1/things?cursor=${secret}#f`, note: `key ${secret}`, list: ['a', secret] } });
    span.recordException(new Error(`failed with ${secret}`));
    span.setStatus({ code: 2, message: `because ${secret}` });
    span.end();
    await provider.forceFlush();
    const [done] = exporter.getFinishedSpans();
    expect(done!.attributes).toEqual({ 'url.full': 'http://h/v1/things', note: 'key [REDACTED]', list: ['a', '[REDACTED]'] });
    expect(done!.status.message).toBe('because [REDACTED]');
    expect(JSON.stringify(done!.events)).not.toContain(secret);
    expect(done!.events[0]!.attributes!['exception.message']).toBe('failed with [REDACTED]');
    await provider.shutdown();
  });
});
