/**
 * Operations features of a gateway process, set up together by startGateway: tracing, Prometheus
 * metrics, circuit breakers per community and the readiness report.
 */
import type { AuditSink } from '../audit/event';
import { CommunityCircuits, type CircuitOptions } from '../circuit/breaker';
import type { Directory } from '../directory/types';
import { composeHooks } from '../pipeline/hooks';
import type { EngineHooks } from '../pipeline/engine';
import type { Logger } from '../util/log';
import { createGatewayMetrics, type AuditSpoolProvider, type GatewayMetrics } from './metrics';
import { Readiness } from './readiness';
import { createTracing, type Tracing } from './tracing';
import type { SpanExporter } from '@opentelemetry/sdk-trace';

export interface ObservabilityOptions {
  role: 'initiating' | 'responding';
  directory: Directory;
  log: Logger;
  /** OTLP/HTTP collector for traces (XCAI_OTLP_ENDPOINT). */
  otlpEndpoint?: string;
  /** An extra span exporter (tests). */
  spanExporter?: SpanExporter;
  /** Circuit breaker settings; false turns circuit breaking off. */
  circuit?: Partial<CircuitOptions> | false;
  /** Process metrics (CPU, memory, event loop); default on. */
  processMetrics?: boolean;
  /** The audit sink: its depth()/bytes()/healthy(), when it has them, feed metrics and readiness. */
  audit?: AuditSink;
}

export interface Observability {
  /** Tracing, metrics and circuit hooks, composed in that order (compose feature hooks after them). */
  readonly hooks: EngineHooks;
  readonly metrics: GatewayMetrics;
  readonly tracing: Tracing;
  readonly circuits?: CommunityCircuits;
  readonly readiness: Readiness;
  /** Replaces where the audit spool depth comes from. */
  setAuditSpool(provider: AuditSpoolProvider | undefined): void;
  close(): Promise<void>;
}

export function createObservability(o: ObservabilityOptions): Observability {
  const tracing = createTracing({
    role: o.role,
    homeCommunityId: o.directory.homeCommunityId,
    otlpEndpoint: o.otlpEndpoint,
    exporter: o.spanExporter,
  });
  const metrics = createGatewayMetrics({ role: o.role, processMetrics: o.processMetrics });
  const readiness = new Readiness();

  let circuits: CommunityCircuits | undefined;
  if (o.circuit !== false) {
    circuits = new CommunityCircuits({ ...o.circuit, communities: o.directory.communities });
    metrics.watchCircuits(circuits);
    const c = circuits;
    readiness.add('circuits', () => c.readiness());
    circuits.onChange((community, from, to) => {
      const fields = { community, from, to, ...c.get(community).snapshot() };
      if (to === 'open') o.log.warn('circuit opened', fields);
      else o.log.info('circuit state changed', fields);
    });
  }

  const sink = o.audit as Partial<{ depth(): number; bytes(): number; healthy(): boolean }> | undefined;
  if (sink && typeof sink.depth === 'function' && typeof sink.bytes === 'function') {
    metrics.setAuditSpool(() => ({ depth: sink.depth?.() ?? 0, bytes: sink.bytes?.() ?? 0 }));
  }
  if (sink && typeof sink.healthy === 'function') {
    // A sink that can no longer write records makes the gateway refuse transactions: unready.
    readiness.add('audit', () => ({
      status: sink.healthy?.() ? 'ok' : 'unready',
      detail: { depth: sink.depth?.(), bytes: sink.bytes?.() },
    }));
  }

  return {
    hooks: composeHooks(tracing.hooks, metrics.hooks, circuits?.hooks()),
    metrics,
    tracing,
    circuits,
    readiness,
    setAuditSpool: (p) => metrics.setAuditSpool(p),
    close: () => tracing.close(),
  };
}

export {
  createGatewayMetrics,
  type AuditSpoolProvider,
  type AuditSpoolStats,
  type GatewayMetrics,
} from './metrics';
export {
  Readiness,
  type ReadinessCheck,
  type ReadinessProvider,
  type ReadinessReport,
  type ReadinessStatus,
} from './readiness';
export {
  contextFromHeaders,
  createTracing,
  otlpTracesUrl,
  traceHeaders,
  type Tracing,
  type TracingOptions,
} from './tracing';
export { communityLabel, errorCodeLabel, peerLabel, transactionOfAction } from './labels';
