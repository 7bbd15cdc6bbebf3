/**
 * OpenTelemetry tracing of one gateway process.
 *
 * - Each inbound transaction gets a SERVER span, child of the caller's W3C `traceparent` if any.
 * - Each sub-request gets a CLIENT span (attribute xcai.community = homeCommunityId or "local"),
 *   and its `traceparent` goes out on the sub-request, so the Responding Gateway's server span joins
 *   the same trace: one trace shows the whole fan-out, one branch per community.
 * - Spans are exported with OTLP/HTTP when an endpoint is configured (XCAI_OTLP_ENDPOINT), or to a
 *   given exporter (tests). Without either no span is recorded, but an incoming `traceparent` is
 *   still passed on to the sub-requests unchanged.
 *
 * Span attributes never carry PHI: transaction names, communities, endpoint URLs, status codes,
 * failure kinds and error codes only.
 */
import { hostname } from 'node:os';
import {
  context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  SimpleSpanProcessor,
  TracerProvider,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import type { EngineHooks } from '../pipeline/engine';
import type { Call } from '../pipeline/transaction';
import { communityLabel, errorCodeLabel, peerLabel, transactionOfAction } from './labels';

export interface TracingOptions {
  role: 'initiating' | 'responding';
  /** Our homeCommunityId (a resource attribute). */
  homeCommunityId?: string;
  /** OTLP/HTTP collector, e.g. http://otel-collector:4318 (/v1/traces is added unless given). */
  otlpEndpoint?: string;
  /** An extra exporter, fed span by span (tests: InMemorySpanExporter). */
  exporter?: SpanExporter;
}

export interface Tracing {
  /** True when spans are recorded and exported. */
  readonly recording: boolean;
  readonly hooks: EngineHooks;
  /** Exports what is buffered. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

// Each gateway uses this propagator directly rather than the global API's, so several gateways in one
// process (tests) share no global state beyond the context manager.
const propagator = new W3CTraceContextPropagator();

/** The W3C trace-context headers for `ctx` (empty when it holds no valid span context). */
export function traceHeaders(ctx: Context): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagator.inject(ctx, carrier, { set: (c, k, v) => (c[k] = v) });
  return carrier;
}

/** The context a request's `traceparent` / `tracestate` headers name (ROOT_CONTEXT if none). */
export function contextFromHeaders(headers: Record<string, string | string[] | undefined>): Context {
  return propagator.extract(ROOT_CONTEXT, headers, {
    get: (c, k) => c[k],
    keys: (c) => Object.keys(c),
  });
}

let contextManagerReady = false;

/** The async context (AsyncLocalStorage) that carries the active span from a request to its sub-requests. */
function ensureContextManager(): void {
  if (contextManagerReady) return;
  contextManagerReady = true;
  const manager = new AsyncLocalStorageContextManager().enable();
  // Another component may have registered one already: that one carries our contexts just as well.
  if (!context.setGlobalContextManager(manager)) manager.disable();
}

/** The OTLP/HTTP traces URL for a collector base URL (OTEL_EXPORTER_OTLP_ENDPOINT semantics). */
export function otlpTracesUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, '');
  return base.endsWith('/v1/traces') ? base : `${base}/v1/traces`;
}

export function createTracing(o: TracingOptions): Tracing {
  ensureContextManager();
  const processors: SpanProcessor[] = [];
  if (o.otlpEndpoint)
    processors.push(
      new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: otlpTracesUrl(o.otlpEndpoint) }) }),
    );
  if (o.exporter) processors.push(new SimpleSpanProcessor({ exporter: o.exporter }));
  const provider = processors.length
    ? new TracerProvider({
        resource: resourceFromAttributes({
          'service.name': `xcai-${o.role}-gateway`,
          'service.namespace': 'xcai',
          'service.instance.id': `${hostname()}:${process.pid}`,
          ...(o.homeCommunityId ? { 'xcai.home_community_id': o.homeCommunityId } : {}),
        }),
        spanProcessors: processors,
      })
    : undefined;
  const tracer: Tracer | undefined = provider?.getTracer('xcai-gateway');
  const calls = new WeakMap<Call<unknown>, Span>();

  const hooks: EngineHooks = {
    around: (tx, inbound, run) => {
      const parent = contextFromHeaders(inbound.req.headers);
      if (!tracer) return context.with(parent, run);
      const span = tracer.startSpan(
        tx.name,
        {
          kind: SpanKind.SERVER,
          attributes: {
            'xcai.transaction': tx.name,
            'xcai.gateway': o.role,
            'xcai.peer': peerLabel(inbound.caller, o.role),
            'http.request.method': inbound.req.method ?? 'POST',
            'url.path': (inbound.req.url ?? '').split('?')[0],
            'network.peer.address': inbound.caller.remoteAddress,
          },
        },
        parent,
      );
      return context.with(trace.setSpan(parent, span), async () => {
        try {
          await run();
        } finally {
          const status = inbound.res.statusCode;
          span.setAttribute('http.response.status_code', status);
          if (status >= 500 || !inbound.res.writableFinished) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
        }
      });
    },
    finished: (_tx, f) => {
      const span = trace.getSpan(context.active());
      if (!span?.isRecording()) return;
      if (f.fault) {
        span.setAttribute('xcai.fault.code', f.fault.code);
        if (f.fault.wsaSubcode) span.setAttribute('xcai.fault.subcode', f.fault.wsaSubcode);
        span.setStatus({ code: SpanStatusCode.ERROR, message: `SOAP fault ${f.fault.code}` });
      } else if (f.delivery && !f.delivery.ok) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'reply not delivered' });
      }
    },
    before: (call) => {
      if (!tracer) return;
      const url = safeUrl(call.target.endpoint.url);
      const transaction = transactionOfAction(call.action);
      const span = tracer.startSpan(
        `${transaction} ${call.target.kind === 'community' ? call.target.location : 'local'}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            'xcai.transaction': transaction,
            'xcai.community': communityLabel(call.target),
            'xcai.target.kind': call.target.kind,
            'server.address': url?.hostname ?? '',
            'server.port': url ? Number(url.port || (url.protocol === 'https:' ? 443 : 80)) : 0,
            'url.full': url ? `${url.origin}${url.pathname}` : '',
          },
        },
        context.active(),
      );
      calls.set(call, span);
    },
    headers: (call) => {
      const span = calls.get(call);
      return traceHeaders(span ? trace.setSpan(context.active(), span) : context.active());
    },
    after: (call, _ctx, outcome) => {
      const span = calls.get(call);
      if (!span) return;
      calls.delete(call);
      span.setAttribute('xcai.outcome', outcome.ok ? 'ok' : outcome.failure.kind);
      if (!outcome.ok) {
        const codes = [...new Set(outcome.errors.map((e) => errorCodeLabel(e.errorCode)))];
        span.setAttribute('xcai.error_codes', codes);
        span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.failure.kind });
      }
      span.end();
    },
  };

  return {
    recording: tracer !== undefined,
    hooks,
    flush: async () => provider?.forceFlush(),
    close: async () => provider?.shutdown(),
  };
}

function safeUrl(u: string): URL | undefined {
  try {
    return new URL(u);
  } catch {
    return undefined;
  }
}
