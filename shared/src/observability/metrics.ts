/**
 * Prometheus metrics of one gateway process (served on the management port as /metrics).
 *
 * Labels are bounded (see labels.ts): transaction names, the directory's homeCommunityIds or
 * "local", outcome classes, CallFailure kinds and known XDS error codes. Every metric carries
 * `gateway` = initiating | responding.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CircuitState, CommunityCircuits } from '../circuit/breaker';
import { CIRCUIT_STATES } from '../circuit/breaker';
import type { RegistryError } from '../ebrim/status';
import type { EngineHooks } from '../pipeline/engine';
import type { Call, Ctx } from '../pipeline/transaction';
import { communityLabel, errorCodeLabel, peerLabel, transactionOfAction } from './labels';

/** What the ATNA module's sink reports about records not yet delivered. */
export interface AuditSpoolStats {
  depth: number;
  bytes: number;
}

export type AuditSpoolProvider = () => AuditSpoolStats | undefined;

export interface GatewayMetricsOptions {
  role: 'initiating' | 'responding';
  /** Process metrics (CPU, memory, event loop, GC); default on. */
  processMetrics?: boolean;
}

export interface GatewayMetrics {
  readonly registry: Registry;
  /** Engine hooks that count inbound requests and sub-requests. */
  readonly hooks: EngineHooks;
  /** Exposes the state of these circuits (xcai_circuit_state, xcai_circuit_transitions_total). */
  watchCircuits(circuits: CommunityCircuits): void;
  /** Where the audit spool depth comes from (the ATNA sink's depth()/bytes()); undefined removes it. */
  setAuditSpool(provider: AuditSpoolProvider | undefined): void;
  /** The exposition for a scrape. */
  render(): Promise<{ contentType: string; body: string }>;
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export function createGatewayMetrics(o: GatewayMetricsOptions): GatewayMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ gateway: o.role });
  if (o.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  new Gauge({
    name: 'xcai_build_info',
    help: 'Version of the gateway software (always 1).',
    labelNames: ['version'],
    registers,
  }).set({ version: VERSION }, 1);

  const requests = new Counter({
    name: 'xcai_requests_total',
    help: 'Inbound transactions by transaction, calling peer (community or local) and outcome (ok, accepted, sender_fault, receiver_fault, undelivered).',
    labelNames: ['transaction', 'peer', 'outcome'],
    registers,
  });
  const requestSeconds = new Histogram({
    name: 'xcai_request_duration_seconds',
    help: 'Time from receiving an inbound transaction to the last byte of its answer.',
    labelNames: ['transaction', 'outcome'],
    buckets: SECONDS,
    registers,
  });
  const requestBytes = new Counter({
    name: 'xcai_request_bytes_total',
    help: 'Bytes of inbound transactions: request bodies (in, by Content-Length) and answers (out).',
    labelNames: ['transaction', 'direction'],
    registers,
  });
  const requestsInFlight = new Gauge({
    name: 'xcai_requests_in_flight',
    help: 'Inbound transactions being served.',
    labelNames: ['transaction'],
    registers,
  });
  const fanoutsInFlight = new Gauge({
    name: 'xcai_fanouts_in_flight',
    help: 'Transactions waiting for at least one sub-request (fan-outs in progress).',
    registers,
  });
  const subrequests = new Counter({
    name: 'xcai_subrequests_total',
    help: 'Sub-requests to communities and local actors by transaction, community (homeCommunityId or local) and outcome (ok or the failure kind).',
    labelNames: ['transaction', 'community', 'outcome'],
    registers,
  });
  const subrequestSeconds = new Histogram({
    name: 'xcai_subrequest_duration_seconds',
    help: 'Time from sending a sub-request until its answer was read.',
    labelNames: ['transaction', 'community'],
    buckets: SECONDS,
    registers,
  });
  const subrequestBytes = new Counter({
    name: 'xcai_subrequest_bytes_total',
    help: 'Bytes of synchronous sub-requests: request (sent) and response body (received).',
    labelNames: ['transaction', 'community', 'direction'],
    registers,
  });
  const subrequestsInFlight = new Gauge({
    name: 'xcai_subrequests_in_flight',
    help: 'Sub-requests in progress by community.',
    labelNames: ['community'],
    registers,
  });
  const registryErrors = new Counter({
    name: 'xcai_registry_errors_total',
    help: 'RegistryErrors per community: those a community answered with, and those standing for a failed sub-request (XDSUnavailableCommunity…).',
    labelNames: ['transaction', 'community', 'error_code', 'severity'],
    registers,
  });

  const started = new WeakSet<Call<unknown>>();
  const fanouts = new WeakMap<Ctx, number>();

  const hooks: EngineHooks = {
    around: async (tx, inbound, run) => {
      const t0 = performance.now();
      const transaction = tx.name;
      requestsInFlight.inc({ transaction });
      const sent = countWrites(inbound.res);
      let done = false;
      const record = () => {
        if (done) return;
        done = true;
        requestsInFlight.dec({ transaction });
        const outcome = outcomeOf(inbound.res);
        requests.inc({ transaction, peer: peerLabel(inbound.caller, o.role), outcome });
        requestSeconds.observe({ transaction, outcome }, (performance.now() - t0) / 1000);
        const length = Number(inbound.req.headers['content-length']);
        if (Number.isFinite(length) && length > 0) requestBytes.inc({ transaction, direction: 'in' }, length);
        requestBytes.inc({ transaction, direction: 'out' }, sent());
      };
      try {
        await run();
      } finally {
        if (inbound.res.writableFinished || inbound.res.destroyed) record();
        else inbound.res.once('close', record);
      }
    },
    before: (call, ctx) => {
      started.add(call);
      subrequestsInFlight.inc({ community: communityLabel(call.target) });
      const n = fanouts.get(ctx) ?? 0;
      if (n === 0) fanoutsInFlight.inc();
      fanouts.set(ctx, n + 1);
    },
    after: (call, ctx, outcome) => {
      const transaction = transactionOfAction(call.action);
      const community = communityLabel(call.target);
      if (started.delete(call)) {
        subrequestsInFlight.dec({ community });
        const n = (fanouts.get(ctx) ?? 1) - 1;
        if (n === 0) {
          fanouts.delete(ctx);
          fanoutsInFlight.dec();
        } else fanouts.set(ctx, n);
      }
      subrequests.inc({ transaction, community, outcome: outcome.ok ? 'ok' : outcome.failure.kind });
      subrequestSeconds.observe({ transaction, community }, outcome.ms / 1000);
      for (const e of outcome.ok ? errorsIn(outcome.value) : outcome.errors) {
        registryErrors.inc({
          transaction,
          community,
          error_code: errorCodeLabel(e.errorCode),
          severity: e.severity === 'Warning' ? 'warning' : 'error',
        });
      }
    },
    transferred: (call, _ctx, bytes) => {
      const labels = {
        transaction: transactionOfAction(call.action),
        community: communityLabel(call.target),
      };
      subrequestBytes.inc({ ...labels, direction: 'sent' }, bytes.sent);
      subrequestBytes.inc({ ...labels, direction: 'received' }, bytes.received);
    },
  };

  let auditSpool: AuditSpoolProvider | undefined;
  let auditGauges = false;
  const ensureAuditGauges = () => {
    if (auditGauges) return;
    auditGauges = true;
    new Gauge({
      name: 'xcai_audit_spool_depth',
      help: 'Audit records not yet confirmed delivered to the Audit Record Repository.',
      registers,
      collect() {
        const s = auditSpool?.();
        if (s) this.set(s.depth);
      },
    });
    new Gauge({
      name: 'xcai_audit_spool_bytes',
      help: 'Bytes of undelivered audit records in the spool.',
      registers,
      collect() {
        const s = auditSpool?.();
        if (s) this.set(s.bytes);
      },
    });
  };

  let circuitGauges = false;
  return {
    registry,
    hooks,
    watchCircuits(circuits) {
      if (circuitGauges) throw new Error('circuits are already watched');
      circuitGauges = true;
      new Gauge({
        name: 'xcai_circuit_state',
        help: 'Circuit breaker state per community: 1 for the current state (closed, half-open, open), 0 for the others.',
        labelNames: ['community', 'state'],
        registers,
        collect() {
          for (const [community, state] of circuits.states()) {
            for (const s of CIRCUIT_STATES) this.set({ community, state: s }, s === state ? 1 : 0);
          }
        },
      });
      const transitions = new Counter({
        name: 'xcai_circuit_transitions_total',
        help: 'Circuit breaker state changes per community, by the state entered.',
        labelNames: ['community', 'to'],
        registers,
      });
      circuits.onChange((community: string, _from: CircuitState, to: CircuitState) =>
        transitions.inc({ community, to }),
      );
    },
    setAuditSpool(provider) {
      auditSpool = provider;
      if (provider) ensureAuditGauges();
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

/** The outcome class of an inbound exchange, from how its HTTP response ended. */
function outcomeOf(res: ServerResponse): string {
  if (!res.writableFinished) return 'undelivered';
  if (res.statusCode === 202) return 'accepted';
  if (res.statusCode >= 200 && res.statusCode < 300) return 'ok';
  if (res.statusCode >= 400 && res.statusCode < 500) return 'sender_fault';
  if (res.statusCode >= 500) return 'receiver_fault';
  return 'other';
}

/** RegistryErrors inside a sub-answer, for answer types that carry them (query and retrieve responses). */
function errorsIn(value: unknown): RegistryError[] {
  const errors = (value as { errors?: unknown } | undefined)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors.filter((e): e is RegistryError => typeof (e as RegistryError)?.errorCode === 'string');
}

/** Counts the body bytes written to a response (write and end), without changing what is written. */
function countWrites(res: ServerResponse): () => number {
  let n = 0;
  const count = (chunk: unknown, encoding: unknown) => {
    if (typeof chunk === 'string')
      n += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    else if (chunk instanceof Uint8Array) n += chunk.byteLength;
  };
  const write = res.write;
  const end = res.end;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    count(chunk, rest[0]);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse['write'];
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (typeof chunk !== 'function') count(chunk, rest[0]);
    return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as ServerResponse['end'];
  return () => n;
}

const VERSION = (() => {
  try {
    return String(
      (JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as { version?: unknown })
        .version ?? 'unknown',
    );
  } catch {
    return 'unknown';
  }
})();
