/**
 * OpenTelemetry traces: on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is
 * not `true`), off otherwise. Off means no SDK: no provider is registered, no HTTP middleware is
 * mounted, the SDK's packages are not even loaded, and {@link startSpan} returns undefined after
 * reading one boolean, so the call path allocates nothing for tracing.
 *
 * On, {@link startTracing} registers a `NodeTracerProvider` (AsyncLocalStorage context) whose
 * spans go through a batch processor to the OTLP/HTTP exporter (OTLP/JSON). The SDK reads
 * the standard variables itself: `OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT,HEADERS,TIMEOUT,
 * COMPRESSION}`, `OTEL_BSP_*`, `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_SPAN_*_LIMIT`,
 * `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (over the default `service.name`
 * `nanoclaw-broker`).
 *
 * A span never carries a secret: the broker's spans hold names, codes and counts only (never
 * headers, params, bodies or results), and every span passes {@link RedactingProcessor} before
 * export, which strips the query from `url.full` and runs every string attribute, event
 * attribute (exception messages, stacks) and status message through the audit redaction.
 * The request span is a root: a `traceparent` sent by an agent is not trusted (no propagator is
 * registered), so an agent can neither join the broker's spans to its trace nor unsample them.
 * Source: OpenTelemetry SDK environment variables and OTLP/HTTP specifications.
 */
import { context, SpanStatusCode, trace, type Attributes, type AttributeValue, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { NodeTracerProvider, ReadableSpan, Span as SdkSpan, SpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { MiddlewareHandler } from 'hono';
import { redactString } from './audit/redact.js';

/** The default `service.name` of the broker's resource (`OTEL_SERVICE_NAME` overrides it). */
export const SERVICE_NAME = 'nanoclaw-broker';

/** `service.name` and `url.full` (stable semantic conventions), spelled here so that nothing is loaded when traces are off. */
const ATTR_SERVICE_NAME = 'service.name';
const ATTR_URL_FULL = 'url.full';

/** The broker's tracer, resolved once when the SDK starts (never per call). */
let tracer: Tracer | null = null;

let provider: NodeTracerProvider | null = null;
/** The request-span middleware, built by {@link startTracing}. */
let middleware: MiddlewareHandler | null = null;
/** Read on every call: true once {@link startTracing} registered the SDK, until {@link shutdownTracing}. */
let on = false;

/**
 * Whether the environment turns traces on: `OTEL_EXPORTER_OTLP_ENDPOINT` set and non-empty, and
 * `OTEL_SDK_DISABLED` not `true` (the SDK specification's kill switch). The signal-specific
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` alone does not turn them on; with the general one set, it
 * overrides where traces go.
 */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env['OTEL_EXPORTER_OTLP_ENDPOINT'] ?? '').trim() !== '' && (env['OTEL_SDK_DISABLED'] ?? '').trim().toLowerCase() !== 'true';
}

/** True while the SDK is started (spans are recorded and exported). */
export function tracingOn(): boolean {
  return on;
}

/**
 * Loads and starts the SDK when {@link tracingRequested} (from `process.env`, which the exporter
 * also reads), once per process; a second call changes nothing. Call it before building the app.
 * @returns whether traces are on.
 */
export async function startTracing(): Promise<boolean> {
  if (on) return true;
  if (!tracingRequested()) return false;
  const [{ BatchSpanProcessor, NodeTracerProvider }, { OTLPTraceExporter }, { detectResources, envDetector, resourceFromAttributes }, { httpInstrumentationMiddleware }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@hono/otel'),
  ]);
  if (on) return true;
  const resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: SERVICE_NAME }).merge(detectResources({ detectors: [envDetector] }));
  provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new RedactingProcessor(), new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register({ propagator: null });
  tracer = provider.getTracer(SERVICE_NAME);
  middleware = httpInstrumentationMiddleware({ tracer, captureRequestHeaders: [], captureResponseHeaders: [], captureActiveRequests: false });
  on = true;
  return true;
}

/**
 * Exports the spans still buffered and stops the SDK (the graceful stop calls it last); resolves
 * after at most `timeoutMs` (ms) even when the collector does not answer. Nothing when off.
 */
export async function shutdownTracing(timeoutMs = 5_000): Promise<void> {
  const p = provider;
  if (!p) return;
  on = false;
  provider = null;
  tracer = null;
  middleware = null;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
    timer.unref();
  });
  try {
    await Promise.race([p.shutdown().catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
    trace.disable();
  }
}

/**
 * Starts a span named `name`, child of `parent` (default: the active context, i.e. the request's
 * span inside a request), when traces are on; undefined when off, without touching the API.
 * The caller ends it (`span?.end()`); `span?.setAttributes({...})` builds its object only when on.
 */
export function startSpan(name: string, parent?: Context): Span | undefined {
  return on && tracer ? tracer.startSpan(name, undefined, parent ?? context.active()) : undefined;
}

/** The active context when traces are on (to parent spans started later, e.g. in a queue); undefined when off. */
export function activeContext(): Context | undefined {
  return on ? context.active() : undefined;
}

/** Marks `span` failed with an error code (the problem `code`, never a message) and ends it. */
export function failSpan(span: Span | undefined, code: string): void {
  if (!span) return;
  span.setAttribute('broker.code', code);
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/**
 * The request span (`@hono/otel`): one SERVER span per request, named `<METHOD> <route pattern>`,
 * with `http.request.method`, `http.route`, `url.full` (its query stripped before export) and
 * `http.response.status_code`; no request or response header is captured. Mount it first;
 * null when traces are off (mount nothing).
 */
export function requestSpans(): MiddlewareHandler | null {
  return middleware;
}

/** Sets an attribute on the active span (the request span inside a request) when traces are on. */
export function annotateRequest(key: string, value: AttributeValue): void {
  if (on) trace.getActiveSpan()?.setAttribute(key, value);
}

/**
 * The last line of defence before export: runs while the span can still be written (`onEnding`),
 * strips the query and fragment from `url.full`, and replaces every secret that redaction knows
 * (registered values, credential patterns) in string attributes, event attributes and the status
 * message by `[REDACTED]`.
 */
export class RedactingProcessor implements SpanProcessor {
  onStart(): void {}

  onEnding(span: SdkSpan): void {
    for (const [key, value] of Object.entries(span.attributes)) {
      const clean = key === ATTR_URL_FULL && typeof value === 'string' ? redactString(withoutQuery(value)) : redacted(value);
      if (clean !== undefined && clean !== value) span.setAttribute(key, clean);
    }
    for (const event of span.events) {
      const attrs = event.attributes as Attributes | undefined;
      if (!attrs) continue;
      for (const [key, value] of Object.entries(attrs)) attrs[key] = redacted(value);
    }
    if (span.status.message !== undefined) span.setStatus({ code: span.status.code, message: redactString(span.status.message) });
  }

  onEnd(_span: ReadableSpan): void {}

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}
}

function redacted(value: AttributeValue | undefined): AttributeValue | undefined {
  if (typeof value === 'string') return redactString(value);
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? redactString(v) : v)) as AttributeValue;
  return value;
}

function withoutQuery(url: string): string {
  const cut = url.search(/[?#]/);
  return cut === -1 ? url : url.slice(0, cut);
}
