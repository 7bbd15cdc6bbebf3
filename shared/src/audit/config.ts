/** Builds an AuditSinkConfig from environment variables (names documented in README.md). */
import * as fs from 'node:fs';
import type { AuditSinkConfig } from './sink';

function num(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${v}`);
  return n;
}

export function auditSinkConfigFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  defaults: Partial<AuditSinkConfig> = {},
): AuditSinkConfig {
  const transport = (env.XCAI_AUDIT_TRANSPORT ?? defaults.transport ?? 'tls') as AuditSinkConfig['transport'];
  if (!['tls', 'relp', 'udp', 'none'].includes(transport))
    throw new Error(`XCAI_AUDIT_TRANSPORT must be tls, relp, udp or none`);
  const host = env.XCAI_AUDIT_HOST ?? defaults.host;
  if (transport !== 'none' && !host)
    throw new Error('XCAI_AUDIT_HOST is required (or XCAI_AUDIT_TRANSPORT=none)');
  const read = (name: string): string => {
    const file = env[name];
    if (!file) throw new Error(`${name} (a PEM file path) is required for XCAI_AUDIT_TRANSPORT=${transport}`);
    return fs.readFileSync(file, 'utf8');
  };
  const sourceId = env.XCAI_AUDIT_SOURCE_ID ?? defaults.source?.auditSourceId;
  if (!sourceId) throw new Error('XCAI_AUDIT_SOURCE_ID is required');
  const retainDays = num(env, 'XCAI_AUDIT_RETAIN_DAYS');
  return {
    ...defaults,
    transport,
    host,
    port: num(env, 'XCAI_AUDIT_PORT') ?? defaults.port,
    tls:
      transport === 'tls' || transport === 'relp'
        ? {
            cert: read('XCAI_AUDIT_TLS_CERT'),
            key: read('XCAI_AUDIT_TLS_KEY'),
            ca: read('XCAI_AUDIT_TLS_CA'),
            servername: env.XCAI_AUDIT_TLS_SERVERNAME || undefined,
            ciphers: env.XCAI_AUDIT_TLS_CIPHERS || undefined,
          }
        : undefined,
    spoolDir: env.XCAI_AUDIT_SPOOL_DIR ?? defaults.spoolDir ?? '/var/lib/xcai/audit',
    maxSpoolBytes: num(env, 'XCAI_AUDIT_MAX_SPOOL_BYTES') ?? defaults.maxSpoolBytes,
    ratePerSecond: num(env, 'XCAI_AUDIT_RATE') ?? defaults.ratePerSecond,
    retainBytes: num(env, 'XCAI_AUDIT_RETAIN_BYTES') ?? defaults.retainBytes,
    retainDays: retainDays ?? defaults.retainDays,
    source: {
      ...defaults.source,
      auditSourceId: sourceId,
      auditEnterpriseSiteId: env.XCAI_AUDIT_ENTERPRISE_SITE_ID ?? defaults.source?.auditEnterpriseSiteId,
      applicationName: env.XCAI_AUDIT_APP_NAME ?? defaults.source?.applicationName,
    },
  };
}
