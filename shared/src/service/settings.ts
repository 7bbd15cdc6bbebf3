import { readFileSync } from 'node:fs';
import { parseSize } from '../directory/load';

/** Process settings from the environment (the Helm chart sets these; see README "Configuration"). */
export interface ServiceSettings {
  /** Community directory file (XCAI_DIRECTORY). */
  directoryFile: string;
  host: string;
  port: number;
  /** Management port for /healthz, /readyz, /metrics; 0 picks a free one, -1 disables. */
  mgmtPort: number;
  /** How peers reach us (XCAI_PUBLIC_URL); defaults to the address we bound. */
  publicUrl?: string;
  tls?: {
    cert: string;
    key: string;
    ca: string[];
    clientAuth: 'required' | 'optional';
  };
  redisUrl?: string;
  /** Prefix of every Redis key (XCAI_REDIS_PREFIX, default `xcai:`): one per deployment sharing a Redis. */
  redisKeyPrefix?: string;
  /** Authenticates async hand-overs between replicas (XCAI_HANDOVER_SECRET; default: derived from the TLS key). */
  handoverSecret?: string;
  /** How the other replicas reach this one (XCAI_INTERNAL_URL, e.g. the pod address); default: the address bound. */
  internalUrl?: string;
  audit: {
    transport: 'tls' | 'udp' | 'none';
    host?: string;
    port?: number;
    spoolDir?: string;
    maxSpoolBytes?: number;
  };
  maxRequestBytes: number;
  otlpEndpoint?: string;
  /** Circuit breaker per community (XCAI_CIRCUIT_FAILURES, XCAI_CIRCUIT_COOLDOWN_MS). */
  circuit?: { failureThreshold: number; coolDownMs: number };
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
  }
  const transport = (env.XCAI_AUDIT_TRANSPORT ?? 'none') as ServiceSettings['audit']['transport'];
  if (!['tls', 'udp', 'none'].includes(transport))
    throw new SettingsError('XCAI_AUDIT_TRANSPORT must be tls, udp or none');
  const maxReq = parseSize(env.XCAI_MAX_REQUEST_BYTES ?? '4MiB');
  if (!maxReq) throw new SettingsError('XCAI_MAX_REQUEST_BYTES must be a size');
  return {
    directoryFile: need('XCAI_DIRECTORY'),
    host: env.XCAI_HOST ?? '127.0.0.1',
    port: int('XCAI_PORT', defaults.port),
    mgmtPort: int('XCAI_MGMT_PORT', 9090),
    publicUrl: env.XCAI_PUBLIC_URL?.replace(/\/+$/, '') || undefined,
    tls,
    redisUrl: env.REDIS_URL || undefined,
    redisKeyPrefix: env.XCAI_REDIS_PREFIX || undefined,
    handoverSecret: env.XCAI_HANDOVER_SECRET || undefined,
    internalUrl: env.XCAI_INTERNAL_URL?.replace(/\/+$/, '') || undefined,
    audit: {
      transport,
      host: env.XCAI_AUDIT_HOST,
      port: env.XCAI_AUDIT_PORT ? int('XCAI_AUDIT_PORT', 6514) : undefined,
      spoolDir: env.XCAI_AUDIT_SPOOL_DIR,
      maxSpoolBytes: env.XCAI_AUDIT_MAX_SPOOL_BYTES ? parseSize(env.XCAI_AUDIT_MAX_SPOOL_BYTES) : undefined,
    },
    maxRequestBytes: maxReq,
    otlpEndpoint: env.XCAI_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
    circuit: {
      failureThreshold: positive('XCAI_CIRCUIT_FAILURES', 5),
      coolDownMs: positive('XCAI_CIRCUIT_COOLDOWN_MS', 30_000),
    },
  };
}

export function readPem(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new SettingsError(`cannot read ${file}: ${(e as Error).message}`);
  }
}
