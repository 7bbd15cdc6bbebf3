import type { Express } from 'express';
import { noopAuditSink, type AuditSink } from '../audit/event';
import { auditGatewayStart, auditGatewayStop, openGatewayAudit } from './audit';
import { loadDirectory } from '../directory/load';
import type { Directory } from '../directory/types';
import { Outbound } from '../outbound/client';
import {
  startManagementServer,
  startSoapServer,
  type RunningServer,
  type SoapRoute,
} from '../inbound/server';
import { MemoryIntegrityStore } from '../integrity/store';
import type { EngineHooks } from '../pipeline/engine';
import { composeHooks } from '../pipeline/hooks';
import type { CircuitOptions } from '../circuit/breaker';
import { createObservability, type Observability } from '../observability';
import type { Readiness, ReadinessProvider } from '../observability/readiness';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import type { Gateway, GatewayLimits } from '../pipeline/transaction';
import { createLogger, type Logger } from '../util/log';
import { DEFAULT_XML_LIMITS } from '../xml/parse';
import { readPem, type ServiceSettings } from './settings';
import { createAsyncSupport, type AsyncSupportOptions } from '../async/support';
import { closeRedis, connectRedis } from '../redis/client';
import { RedisIntegrityStore } from '../integrity/redis-store';
import { correlationCache } from '../identity/setup';
import { createSecurity } from '../security';
import { ownCertificateNames } from '../security/certificates';
import { Disclosure, needsDisclosure } from '../disclosure';
import { installOcspStapling } from '../security/revocation';
import type { Server as HttpsServer } from 'node:https';

export interface GatewayOptions {
  role: 'initiating' | 'responding';
  routes: SoapRoute[];
  settings: ServiceSettings;
  /** Use this directory instead of reading settings.directoryFile (tests). */
  directory?: Directory;
  audit?: AuditSink;
  log?: Logger;
  hooks?: EngineHooks;
  limits?: Partial<GatewayLimits>;
  extend?: (app: Express, gateway: Gateway) => void;
  /** Asynchronous exchange (Appendix V) tuning; false turns it off (async requests are then refused). */
  async?: Partial<Pick<AsyncSupportOptions, 'deliveryWindowMs' | 'attemptTimeoutMs' | 'graceMs'>> | false;
  /** Readiness checks of other features (Redis…), by name; more can be added on RunningGateway.readiness. */
  readinessProviders?: Record<string, ReadinessProvider>;
  /** Circuit breaker settings (default from settings.circuit); false turns circuit breaking off. */
  circuit?: Partial<CircuitOptions> | false;
  /** An extra span exporter (tests: InMemorySpanExporter); OTLP export follows settings.otlpEndpoint. */
  spanExporter?: SpanExporter;
}

export interface RunningGateway {
  gateway: Gateway;
  soap: RunningServer;
  mgmt?: RunningServer;
  /** Base URL of the SOAP endpoints. */
  url: string;
  /** Tracing, metrics and circuit breakers of this gateway. */
  observability: Observability;
  /** Readiness checks behind /readyz; features add theirs with `readiness.add(name, check)`. */
  readiness: Readiness;
  /** Stops serving; `reason` (e.g. the signal) goes into the Application Stop audit record. */
  close(reason?: string): Promise<void>;
}

/** Every URL the directory names — the only places this gateway may send to. */
export function directoryUrls(d: Directory): Set<string> {
  const urls = new Set<string>();
  if (d.local.registry) urls.add(d.local.registry.url);
  if (d.local.patientDemographicsSupplier) urls.add(d.local.patientDemographicsSupplier.url);
  for (const e of [...d.local.repositories, ...d.local.imagingDocumentSources]) urls.add(e.url);
  for (const c of d.communities) for (const e of Object.values(c.endpoints)) if (e) urls.add(e.url);
  if (d.consent?.service) urls.add(d.consent.service.url);
  if (d.breakGlass?.webhook) urls.add(d.breakGlass.webhook.url);
  for (const r of d.revocation ?? []) if (r.ocsp) urls.add(r.ocsp.url);
  return urls;
}

export const DEFAULT_LIMITS: GatewayLimits = {
  maxRequestBytes: 4 * 1024 * 1024,
  xml: DEFAULT_XML_LIMITS,
  maxRetrieveRootBytes: 64 * 1024 * 1024,
  lookaheadBytes: 16 * 1024 * 1024,
};

export async function startGateway(o: GatewayOptions): Promise<RunningGateway> {
  const s = o.settings;
  const log = (o.log ?? createLogger({ service: `${o.role}-gateway` })).child({});
  const directory = o.directory ?? loadDirectory(s.directoryFile);
  // The audit trail (XCAI_AUDIT_*): opened first, so that nothing is served unaudited.
  const auditing = o.audit
    ? undefined
    : openGatewayAudit({ role: o.role, settings: s.audit, directory, log });
  const audit = o.audit ?? auditing?.sink ?? noopAuditSink;
  const allowed = directoryUrls(directory);
  const tls = s.tls
    ? { cert: readPem(s.tls.cert), key: readPem(s.tls.key), ca: s.tls.ca.map(readPem) }
    : undefined;
  const limits: GatewayLimits = { ...DEFAULT_LIMITS, maxRequestBytes: s.maxRequestBytes, ...o.limits };
  // mTLS identities, admission (acceptRequests, consumers, XUA), per-peer limits: see security/index.ts.
  const security = createSecurity({
    role: o.role,
    directory,
    audit,
    log,
    soapPaths: o.routes.map((r) => r.path),
    maxRequestBytes: limits.maxRequestBytes,
  });
  const outbound = new Outbound(
    tls
      ? { ...tls, ciphers: s.tls?.ciphers, minVersion: s.tls?.minVersion, revocation: security.revocation }
      : {},
    (url) => allowed.has(url),
    security.outbound,
  );
  // OCSP requests go out through the same client, to the responders the directory names.
  security.revocation?.useOutbound((p) => outbound.post(p));
  let publicUrl = s.publicUrl ?? '';
  // One Redis client per process, shared by the async correlation and the integrity store.
  const redis = s.redisUrl ? connectRedis(s.redisUrl, { keyPrefix: s.redisKeyPrefix, log }) : undefined;
  const gateway: Gateway = {
    role: o.role,
    directory,
    outbound,
    audit,
    log,
    limits,
    get publicUrl() {
      return publicUrl;
    },
    tlsIdentity: tls ? ownCertificateNames(tls.cert) : undefined,
    integrity:
      o.role === 'initiating'
        ? redis
          ? new RedisIntegrityStore(redis, undefined, log)
          : new MemoryIntegrityStore()
        : undefined,
    // Consent, break-glass and document-class policy at the Responding Gateway (R9–R11).
    disclosure:
      o.role === 'responding' && needsDisclosure(directory)
        ? new Disclosure({ directory, audit, log, redis })
        : undefined,
    correlations:
      o.role === 'initiating'
        ? correlationCache({ directory, redis, secret: s.handoverSecret, tlsKey: tls?.key, log })
        : undefined,
  };
  const observability = createObservability({
    role: o.role,
    directory,
    log,
    otlpEndpoint: s.otlpEndpoint,
    spanExporter: o.spanExporter,
    circuit: o.circuit === false ? false : { ...s.circuit, ...o.circuit },
    audit,
  });
  gateway.disclosure?.registerMetrics(observability.metrics.registry);
  const readiness = observability.readiness;
  let soapUrl = '';
  const asyncSupport =
    o.async === false
      ? undefined
      : createAsyncSupport({
          gateway,
          role: o.role,
          redis,
          handoverSecret: s.handoverSecret,
          tlsKey: tls?.key,
          internalUrl: () => s.internalUrl ?? soapUrl,
          ...o.async,
        });
  if (asyncSupport) {
    readiness.add('async', async () => {
      const st = await asyncSupport.ready();
      return { status: st.available ? 'ok' : 'degraded', detail: { ...st } };
    });
  }
  for (const [name, check] of Object.entries(o.readinessProviders ?? {})) readiness.add(name, check);
  const soap = await startSoapServer({
    gateway,
    routes: o.routes,
    hooks: composeHooks(
      observability.hooks,
      o.hooks,
      asyncSupport?.hooks,
      o.hooks?.admit ? undefined : security.hooks,
    ),
    host: s.host,
    port: s.port,
    tls:
      tls && s.tls
        ? {
            ...tls,
            ca: [...tls.ca, ...security.trustAnchors],
            clientAuth: s.tls.clientAuth,
            ciphers: s.tls.ciphers,
            minVersion: s.tls.minVersion,
            handshakeTimeoutMs: security.limits.handshakeTimeoutMs,
          }
        : undefined,
    extend: (app) => {
      security.extend(app);
      asyncSupport?.extend(app);
      o.extend?.(app, gateway);
    },
  });
  security.install(soap.server, !!tls);
  if (tls && s.tls?.ocspStapling)
    installOcspStapling(soap.server as HttpsServer, { outbound, log, url: s.tls.ocspUrl });
  if (!publicUrl) publicUrl = soap.url;
  soapUrl = soap.url;
  await asyncSupport?.start();
  const mgmt =
    s.mgmtPort >= 0
      ? await startManagementServer({
          host: s.host,
          port: s.mgmtPort,
          ready: () =>
            readiness.report({
              directory: {
                homeCommunityId: directory.homeCommunityId,
                communities: directory.communities.length,
              },
            }),
          metrics: () => observability.metrics.render(),
        })
      : undefined;
  log.info('gateway started', {
    role: o.role,
    url: soap.url,
    mgmt: mgmt?.url,
    homeCommunityId: directory.homeCommunityId,
    communities: directory.communities.length,
    audit: auditing?.summary,
  });
  auditGatewayStart(audit, {
    role: o.role,
    directory,
    directoryFile: o.directory ? undefined : s.directoryFile,
    url: soap.url,
    tlsCertFile: s.tls?.cert,
    audit: auditing?.summary ?? 'sink provided by the caller',
  });
  return {
    gateway,
    soap,
    mgmt,
    url: soap.url,
    observability,
    readiness,
    async close(reason?: string) {
      auditGatewayStop(audit, o.role, reason);
      await soap.close();
      await mgmt?.close();
      await asyncSupport?.close();
      if (redis) await closeRedis(redis);
      await outbound.close();
      await audit.close();
      await observability.close();
    },
  };
}

/** Runs a service until SIGINT/SIGTERM; a start-up error ends the process with a clear message. */
export function runMain(start: () => Promise<{ close(reason?: string): Promise<void> }>): void {
  start().then(
    (svc) => {
      const stop = (signal: NodeJS.Signals) => {
        svc.close(signal).then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (e: Error) => {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    },
  );
}
