import { readFileSync } from 'node:fs';
import { parseSize } from '../directory/load';
import { auditSettingsFromEnv, type AuditSettings } from './audit';
import { redisSettingsFromEnv, RedisSettingsError, type RedisSettings } from '../redis/settings';

/** Process settings from the environment (the Helm chart sets these; see README "Configuration"). */
export interface ServiceSettings {
  /** Community directory file (XCAI_DIRECTORY). */
  directoryFile: string;
  host: string;
  port: number;
  /** Management port for /healthz, /readyz, /metrics; 0 picks a free one, -1 disables. */
  mgmtPort: number;
  /**
   * On SIGTERM / SIGINT, how long the requests under way may finish before the connections are
   * closed (XCAI_SHUTDOWN_GRACE_MS, default 10 s; below Kubernetes' 30 s termination grace).
   */
  shutdownGraceMs?: number;
  /** How peers reach us (XCAI_PUBLIC_URL); defaults to the address we bound. */
  publicUrl?: string;
  tls?: {
    cert: string;
    key: string;
    ca: string[];
    clientAuth: 'required' | 'optional';
    /** OpenSSL cipher list, both directions (XCAI_TLS_CIPHERS; default AEAD-only, outbound/client.ts). */
    ciphers?: string;
    /** Lowest TLS version, both directions (XCAI_TLS_MIN_VERSION: TLSv1.2 (default) or TLSv1.3). */
    minVersion?: 'TLSv1.2' | 'TLSv1.3';
    /** Staple an OCSP response for our certificate (XCAI_TLS_OCSP_STAPLING=on; default off). */
    ocspStapling?: boolean;
    /** Where that response comes from (XCAI_TLS_OCSP_URL; default the certificate's AIA OCSP URL). */
    ocspUrl?: string;
  };
  /** From REDIS_URL / REDIS_SENTINELS / REDIS_CLUSTER_NODES and friends (or a plain URL: tests). */
  redis?: RedisSettings | string;
  /** Prefix of every Redis key (XCAI_REDIS_PREFIX, default `xcai:`): one per deployment sharing a Redis. */
  redisKeyPrefix?: string;
  /**
   * Readiness turns false once the shared Redis has been unreachable this long (the replica can
   * then neither accept async requests nor hand answers over); -1: never (degraded only). Default 10 s,
   * longer than a Sentinel failover, so a failover does not empty the Service.
   */
  redisUnreadyAfterMs?: number;
  /** Authenticates async hand-overs between replicas (XCAI_HANDOVER_SECRET; default: derived from the TLS key). */
  handoverSecret?: string;
  /** How the other replicas reach this one (XCAI_INTERNAL_URL, e.g. the pod address); default: the address bound. */
  internalUrl?: string;
  /** ATNA audit trail (XCAI_AUDIT_*; see ./audit.ts for the defaults). */
  audit: AuditSettings;
  maxRequestBytes: number;
  otlpEndpoint?: string;
  /** Circuit breaker per community (XCAI_CIRCUIT_FAILURES, XCAI_CIRCUIT_COOLDOWN_MS). */
  circuit?: { failureThreshold: number; coolDownMs: number };
  /**
   * How often the files of the configuration are checked for changes (XCAI_RELOAD_POLL_MS,
   * default 5000; 0: only SIGHUP reloads). See service/reload.ts.
   */
  reloadPollMs?: number;
}

export class SettingsError extends Error {}

export function settingsFromEnv(
  env: NodeJS.ProcessEnv,
  defaults: { port: number; clientAuth: 'required' | 'optional' },
): ServiceSettings {
  const need = (k: string) => {
    const v = env[k];
    if (!v) throw new SettingsError(`environment variable ${k} is required`);
    return v;
  };
  const int = (k: string, d: number) => {
    const v = env[k];
    if (v === undefined || v === '') return d;
    const n = Number(v);
    if (!Number.isInteger(n)) throw new SettingsError(`${k} must be an integer`);
    return n;
  };
  const positive = (k: string, d: number) => {
    const n = int(k, d);
    if (n < 1) throw new SettingsError(`${k} must be a positive integer`);
    return n;
  };
  const nonNegative = (k: string, d: number) => {
    const n = int(k, d);
    if (n < 0) throw new SettingsError(`${k} must be 0 or more`);
    return n;
  };
  const tlsCert = env.XCAI_TLS_CERT;
  let tls: ServiceSettings['tls'];
  if (tlsCert) {
    const clientAuth = env.XCAI_TLS_CLIENT_AUTH ?? defaults.clientAuth;
    if (clientAuth !== 'required' && clientAuth !== 'optional') {
      throw new SettingsError('XCAI_TLS_CLIENT_AUTH must be "required" or "optional"');
    }
    tls = {
      cert: tlsCert,
      key: need('XCAI_TLS_KEY'),
      ca: need('XCAI_TLS_CA')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      clientAuth,
    };
    const minVersion = env.XCAI_TLS_MIN_VERSION || undefined;
    if (minVersion !== undefined && minVersion !== 'TLSv1.2' && minVersion !== 'TLSv1.3')
      throw new SettingsError('XCAI_TLS_MIN_VERSION must be TLSv1.2 or TLSv1.3');
    if (minVersion) tls.minVersion = minVersion;
    if (env.XCAI_TLS_CIPHERS) tls.ciphers = env.XCAI_TLS_CIPHERS;
    const stapling = env.XCAI_TLS_OCSP_STAPLING || 'off';
    if (stapling !== 'on' && stapling !== 'off')
      throw new SettingsError('XCAI_TLS_OCSP_STAPLING must be on or off');
    if (stapling === 'on') tls.ocspStapling = true;
    if (env.XCAI_TLS_OCSP_URL) {
      if (!/^http:\/\/[^\s]+$/.test(env.XCAI_TLS_OCSP_URL))
        throw new SettingsError('XCAI_TLS_OCSP_URL must be an http:// URL');
      tls.ocspUrl = env.XCAI_TLS_OCSP_URL;
    }
  }
  let audit: AuditSettings;
  try {
    audit = auditSettingsFromEnv(env);
  } catch (e) {
    throw new SettingsError((e as Error).message);
  }
  let redis: RedisSettings | undefined;
  try {
    redis = redisSettingsFromEnv(env);
  } catch (e) {
    if (e instanceof RedisSettingsError) throw new SettingsError(e.message);
    throw e;
  }
  const redisKeyPrefix = env.XCAI_REDIS_PREFIX || undefined;
  // A brace in the prefix would become every key's hash tag: one Cluster slot for everything.
  if (redisKeyPrefix && /[{}]/.test(redisKeyPrefix))
    throw new SettingsError('XCAI_REDIS_PREFIX must not contain { or } (the keys carry their own hash tags)');
  if (int('XCAI_REDIS_UNREADY_AFTER_MS', 10_000) < -1)
    throw new SettingsError('XCAI_REDIS_UNREADY_AFTER_MS must be -1 (never) or a duration in ms');
  const maxReq = parseSize(env.XCAI_MAX_REQUEST_BYTES ?? '4MiB');
  if (!maxReq) throw new SettingsError('XCAI_MAX_REQUEST_BYTES must be a size');
  return {
    directoryFile: need('XCAI_DIRECTORY'),
    host: env.XCAI_HOST ?? '127.0.0.1',
    port: int('XCAI_PORT', defaults.port),
    mgmtPort: int('XCAI_MGMT_PORT', 9090),
    shutdownGraceMs: int('XCAI_SHUTDOWN_GRACE_MS', 10_000),
    publicUrl: env.XCAI_PUBLIC_URL?.replace(/\/+$/, '') || undefined,
    tls,
    redis,
    redisKeyPrefix,
    redisUnreadyAfterMs: int('XCAI_REDIS_UNREADY_AFTER_MS', 10_000),
    handoverSecret: env.XCAI_HANDOVER_SECRET || undefined,
    internalUrl: env.XCAI_INTERNAL_URL?.replace(/\/+$/, '') || undefined,
    audit,
    maxRequestBytes: maxReq,
    otlpEndpoint: env.XCAI_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
    circuit: {
      failureThreshold: positive('XCAI_CIRCUIT_FAILURES', 5),
      coolDownMs: positive('XCAI_CIRCUIT_COOLDOWN_MS', 30_000),
    },
    reloadPollMs: nonNegative('XCAI_RELOAD_POLL_MS', 5_000),
  };
}

export function readPem(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new SettingsError(`cannot read ${file}: ${(e as Error).message}`);
  }
}
