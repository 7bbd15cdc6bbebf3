import type { Express } from 'express';
import { noopAuditSink, type AuditSink } from '../audit/event';
import {
  auditGatewayConfiguration,
  auditGatewayStart,
  auditGatewayStop,
  auditTlsFiles,
  auditTlsOptions,
  openGatewayAudit,
} from './audit';
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
import type { ServiceSettings } from './settings';
import { X509Certificate } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import {
  checkServerTls,
  readTlsMaterial,
  serverSecureContextOptions,
  type TlsMaterial,
} from '../security/server-tls';
import { Reloader } from './reload';
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
  /**
   * 'initiating': callers are local consumers (`consumers`); 'responding': other communities. The
   * imaging-source bridge runs as 'initiating' (its callers are its own community's actors).
   */
  role: 'initiating' | 'responding';
  /** Name in logs and audit records (default `${role}-gateway`). */
  service?: string;
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
  /**
   * Reads certificates and directory again and applies them when all is good (service/reload.ts);
   * resolves false when something was refused (the previous configuration stays).
   */
  reload(trigger?: string): Promise<boolean>;
  /** Stops serving; `reason` (e.g. the signal) goes into the Application Stop audit record. */
  close(reason?: string): Promise<void>;
}

/** The files a reload reads: the directory and what it names, our TLS files, the audit TLS files. */
function watchedFiles(s: ServiceSettings, directory: Directory | undefined): string[] {
  const files = new Set<string>();
  if (directory) {
    files.add(s.directoryFile);
    for (const c of [...directory.communities, ...directory.consumers])
      for (const f of c.identity?.trustAnchors ?? []) files.add(f);
    for (const f of directory.xua?.idpCertificates ?? []) files.add(f);
  }
  if (s.tls) for (const f of [s.tls.cert, s.tls.key, ...s.tls.ca]) files.add(f);
  for (const f of auditTlsFiles(s.audit)) files.add(f);
  return [...files];
}

/** Every URL the directory names — the only places this gateway may send to. */
export function directoryUrls(d: Directory): Set<string> {
  const urls = new Set<string>();
  if (d.local.registry) urls.add(d.local.registry.url);
  if (d.local.patientDemographicsSupplier) urls.add(d.local.patientDemographicsSupplier.url);
  for (const e of [...d.local.repositories, ...d.local.imagingDocumentSources]) urls.add(e.url);
  for (const c of d.communities) for (const e of Object.values(c.endpoints)) if (e) urls.add(e.url);
  if (d.local.publish) urls.add(d.local.publish.repository.url);
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

/**
 * The limits for requests of at most `maxRequestBytes` (XCAI_MAX_REQUEST_BYTES): the request's XML may
 * be as large as the request (a RAD-69 of a 20,000-instance study is about 6 MiB).
 */
export function requestLimits(maxRequestBytes: number): GatewayLimits {
  return { ...DEFAULT_LIMITS, maxRequestBytes, xml: { ...DEFAULT_XML_LIMITS, maxBytes: maxRequestBytes } };
}

export async function startGateway(o: GatewayOptions): Promise<RunningGateway> {
  const s = o.settings;
  const service = o.service ?? `${o.role}-gateway`;
  const log = (o.log ?? createLogger({ service })).child({});
  let directory = o.directory ?? loadDirectory(s.directoryFile);
  // The audit trail (XCAI_AUDIT_*): opened first, so that nothing is served unaudited.
  const auditing = o.audit
    ? undefined
    : openGatewayAudit({ role: o.role, service, settings: s.audit, directory, log });
  const audit = o.audit ?? auditing?.sink ?? noopAuditSink;
  let allowed = directoryUrls(directory);
  let tls = s.tls ? readTlsMaterial(s.tls) : undefined;
  let tlsNames = tls ? ownCertificateNames(tls.cert) : undefined;
  const clientTls = (m: TlsMaterial | undefined) =>
    m
      ? { ...m, ciphers: s.tls?.ciphers, minVersion: s.tls?.minVersion, revocation: security.revocation }
      : {};
  const limits: GatewayLimits = { ...requestLimits(s.maxRequestBytes), ...o.limits };
  // mTLS identities, admission (acceptRequests, consumers, XUA), per-peer limits: see security/index.ts.
  const security = createSecurity({
    role: o.role,
    directory,
    audit,
    log,
    soapPaths: o.routes.map((r) => r.path),
    maxRequestBytes: limits.maxRequestBytes,
  });
  const outbound = new Outbound(clientTls(tls), (url) => allowed.has(url), security.outbound);
  // OCSP requests go out through the same client, to the responders the directory names.
  security.revocation.useOutbound((p) => outbound.post(p));
  let publicUrl = s.publicUrl ?? '';
  // One Redis client per process, shared by the async correlation and the integrity store.
  const redis = s.redis ? connectRedis(s.redis, { keyPrefix: s.redisKeyPrefix, log }) : undefined;
  const gateway: Gateway = {
    role: o.role,
    get directory() {
      return directory;
    },
    outbound,
    audit,
    log,
    limits,
    get publicUrl() {
      return publicUrl;
    },
    get tlsIdentity() {
      return tlsNames;
    },
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
    const unreadyAfter = s.redisUnreadyAfterMs ?? 10_000;
    readiness.add('async', async () => {
      const st = await asyncSupport.ready();
      // Briefly away (a failover): degraded, sync traffic goes on. Away for long: unready, so the
      // Service stops sending this replica traffic it would have to refuse or answer synchronously.
      const long = st.store === 'redis' && unreadyAfter >= 0 && st.unavailableMs >= unreadyAfter;
      return { status: st.available ? 'ok' : long ? 'unready' : 'degraded', detail: { ...st } };
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
            context: serverSecureContextOptions(s.tls, tls, security.trustAnchors),
            clientAuth: s.tls.clientAuth,
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

  // Reload (SIGHUP, or a changed file): everything is read and checked first, then swapped at once.
  const auditSummary = auditing?.summary ?? 'sink provided by the caller';
  const certificateDetail = () => {
    if (!tls) return {};
    const leaf = new X509Certificate(tls.cert);
    return {
      certificate: { subject: leaf.subject, notAfter: leaf.validTo, fingerprint256: leaf.fingerprint256 },
    };
  };
  const reloader = new Reloader({
    log: log.child({ component: 'reload' }),
    pollMs: s.reloadPollMs ?? 5_000,
    initialDetail: certificateDetail(),
    files: () => watchedFiles(s, o.directory ? undefined : directory),
    apply: () => {
      const nextDirectory = o.directory ?? loadDirectory(s.directoryFile);
      if (nextDirectory.homeCommunityId !== directory.homeCommunityId)
        throw new Error(
          `homeCommunityId changed (${directory.homeCommunityId} → ${nextDirectory.homeCommunityId}): that needs a restart`,
        );
      const nextTls = s.tls ? readTlsMaterial(s.tls) : undefined;
      const nextAuditTls = auditing?.managed ? auditTlsOptions(s.audit) : undefined;
      const nextSecurity = security.prepare(nextDirectory);
      const context =
        s.tls && nextTls ? serverSecureContextOptions(s.tls, nextTls, nextSecurity.trustAnchors) : undefined;
      if (context) checkServerTls(context);
      // All good: swap.
      nextSecurity.commit();
      directory = nextDirectory;
      allowed = directoryUrls(nextDirectory);
      if (context && nextTls) {
        (soap.server as unknown as { setSecureContext(o: SecureContextOptions): void }).setSecureContext(
          context,
        );
        tls = nextTls;
        tlsNames = ownCertificateNames(nextTls.cert);
        outbound.setTls(clientTls(nextTls));
      }
      if (nextAuditTls) auditing?.managed?.updateTls(nextAuditTls);
      return {
        ...certificateDetail(),
        communities: nextDirectory.communities.length,
        consumers: nextDirectory.consumers.length,
      };
    },
    onResult: (ok, trigger, error) =>
      auditGatewayConfiguration(audit, {
        directory,
        directoryFile: o.directory ? undefined : s.directoryFile,
        tlsCertFile: s.tls?.cert,
        audit: auditSummary,
        what: ok
          ? `configuration reloaded (${trigger})`
          : `configuration reload refused (${trigger}): ${error}`,
        outcome: ok ? 0 : 4,
      }),
  });
  readiness.add('configuration', () => reloader.readiness());
  reloader.start();

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
    service,
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
    reload: (trigger = 'request') => reloader.reload(trigger),
    async close(reason?: string) {
      reloader.stop();
      auditGatewayStop(audit, service.replace(/-/g, ' '), reason);
      // Stopped by a signal (a rolling restart, `kubectl delete pod`): what is under way finishes.
      const signalled = reason === 'SIGTERM' || reason === 'SIGINT';
      await soap.close(signalled ? (s.shutdownGraceMs ?? 10_000) : 0);
      await mgmt?.close();
      await asyncSupport?.close();
      if (redis) await closeRedis(redis);
      await outbound.close();
      await audit.close();
      await observability.close();
    },
  };
}

/**
 * Runs a service until SIGINT/SIGTERM (SIGHUP reloads its configuration, when it can); a start-up
 * error ends the process with a clear message.
 */
export function runMain(
  start: () => Promise<{
    close(reason?: string): Promise<void>;
    reload?(trigger?: string): Promise<boolean>;
  }>,
): void {
  start().then(
    (svc) => {
      if (svc.reload) process.on('SIGHUP', () => void svc.reload?.('SIGHUP'));
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
