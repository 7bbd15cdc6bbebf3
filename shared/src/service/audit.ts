/**
 * ATNA wiring of a gateway process: audit settings from the environment, and the audit sink a
 * gateway runs with (see shared/src/audit/README.md, "Gateway wiring").
 *
 * Default (XCAI_AUDIT_TRANSPORT unset or `none`): a LOCAL audit trail — records are built, hash-chained
 * and fsync'd into the spool directory (XCAI_AUDIT_SPOOL_DIR, default /var/lib/xcai/audit) and kept
 * there for the report command and retention, but not sent anywhere. Rationale: an access that
 * leaves no record at all can never be reviewed (R13, R16), while a local trail costs little and
 * needs no other service; a deployment names its Audit Record Repository with `tls` (RFC 5425).
 * When only built-in defaults were used and the default directory cannot be used (not writable,
 * held by another process), the gateway still starts, without a trail, logging an error; an
 * operator who configured a directory or a repository gets a start-up failure instead (fail closed).
 * `off` turns auditing off on purpose (development, benchmarks).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { auditApplicationStart, auditApplicationStop, auditConfigurationLoaded } from '../audit/gateway';
import { noopAuditSink, type AuditSink } from '../audit/event';
import { createAuditSink, DEFAULT_PORTS, type AuditSinkConfig, type ManagedAuditSink } from '../audit/sink';
import { parseSize } from '../directory/load';
import type { Directory } from '../directory/types';
import type { Logger } from '../util/log';

export type AuditTransport = 'tls' | 'relp' | 'udp' | 'none' | 'off';

/** Where the built-in default spool lives (the Helm chart mounts a volume and sets its own). */
export const DEFAULT_AUDIT_SPOOL_DIR = '/var/lib/xcai/audit';

export interface AuditSettings {
  /**
   * tls = RFC 5425 to an ARR; relp = RELP over TLS (acknowledged); udp = RFC 5426; none = local
   * trail only; off = no audit trail.
   */
  transport: AuditTransport;
  host?: string;
  port?: number;
  /** Spool / local audit log directory. Absent (settings built in code) with `none` = no trail. */
  spoolDir?: string;
  /** True when spoolDir is the built-in default rather than XCAI_AUDIT_SPOOL_DIR. */
  spoolDirIsDefault?: boolean;
  maxSpoolBytes?: number;
  /** PEM file paths; default: the gateway's own XCAI_TLS_CERT / XCAI_TLS_KEY / XCAI_TLS_CA. */
  tls?: { cert?: string; key?: string; ca?: string[]; servername?: string; ciphers?: string };
  ratePerSecond?: number;
  retainDays?: number;
  retainBytes?: number;
  /** AuditSourceID; default `<role>-gateway@<host name>`. */
  sourceId?: string;
  /** AuditEnterpriseSiteID; default the home community OID. */
  enterpriseSiteId?: string;
  /** Syslog APP-NAME and the application's UserID; default `xcai-<role>-gateway`. */
  appName?: string;
}

export class AuditSettingsError extends Error {}

/** Reads the XCAI_AUDIT_* variables (listed in shared/src/audit/README.md). */
export function auditSettingsFromEnv(env: NodeJS.ProcessEnv): AuditSettings {
  const transport = (env.XCAI_AUDIT_TRANSPORT || 'none') as AuditTransport;
  if (!['tls', 'relp', 'udp', 'none', 'off'].includes(transport))
    throw new AuditSettingsError('XCAI_AUDIT_TRANSPORT must be tls, relp, udp, none or off');
  const num = (k: string, integer = false): number | undefined => {
    const v = env[k];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n)))
      throw new AuditSettingsError(`${k} must be a non-negative ${integer ? 'integer' : 'number'}`);
    return n;
  };
  const size = (k: string): number | undefined => {
    const v = env[k];
    if (v === undefined || v === '') return undefined;
    const n = parseSize(v);
    if (!n) throw new AuditSettingsError(`${k} must be a size (e.g. 268435456 or 256MiB)`);
    return n;
  };
  const list = (v: string | undefined) =>
    v
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const host = env.XCAI_AUDIT_HOST || undefined;
  if (transport !== 'none' && transport !== 'off' && !host)
    throw new AuditSettingsError(`XCAI_AUDIT_TRANSPORT=${transport} needs XCAI_AUDIT_HOST`);
  const rate = num('XCAI_AUDIT_RATE');
  if (rate === 0) throw new AuditSettingsError('XCAI_AUDIT_RATE must be > 0');
  return {
    transport,
    host,
    port: num('XCAI_AUDIT_PORT', true),
    spoolDir: env.XCAI_AUDIT_SPOOL_DIR || DEFAULT_AUDIT_SPOOL_DIR,
    spoolDirIsDefault: !env.XCAI_AUDIT_SPOOL_DIR,
    maxSpoolBytes: size('XCAI_AUDIT_MAX_SPOOL_BYTES'),
    tls: {
      cert: env.XCAI_AUDIT_TLS_CERT || env.XCAI_TLS_CERT || undefined,
      key: env.XCAI_AUDIT_TLS_KEY || env.XCAI_TLS_KEY || undefined,
      ca: list(env.XCAI_AUDIT_TLS_CA) ?? list(env.XCAI_TLS_CA),
      servername: env.XCAI_AUDIT_TLS_SERVERNAME || undefined,
      ciphers: env.XCAI_AUDIT_TLS_CIPHERS || undefined,
    },
    ratePerSecond: rate,
    retainDays: num('XCAI_AUDIT_RETAIN_DAYS'),
    retainBytes: size('XCAI_AUDIT_RETAIN_BYTES'),
    sourceId: env.XCAI_AUDIT_SOURCE_ID || undefined,
    enterpriseSiteId: env.XCAI_AUDIT_ENTERPRISE_SITE_ID || undefined,
    appName: env.XCAI_AUDIT_APP_NAME || undefined,
  };
}

export interface GatewayAudit {
  sink: AuditSink;
  /** The spooling sink (health, depth, metrics), when there is an audit trail. */
  managed?: ManagedAuditSink;
  /** arr = sent to an Audit Record Repository; local = spool only; off = no trail. */
  mode: 'arr' | 'local' | 'off';
  spoolDir?: string;
  /** One line for the start-up log. */
  summary: string;
}

function pem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new AuditSettingsError(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

/**
 * The TLS client material for the ARR (tls and relp transports; undefined otherwise), read from the
 * files the settings name — at start, and again on a reload (certificate rotation).
 */
export function auditTlsOptions(a: AuditSettings): AuditSinkConfig['tls'] {
  if (a.transport !== 'tls' && a.transport !== 'relp') return undefined;
  const f = a.tls ?? {};
  if (!f.cert || !f.key || !f.ca?.length)
    throw new AuditSettingsError(
      `XCAI_AUDIT_TRANSPORT=${a.transport} needs a client certificate, key and trust anchors: ` +
        'XCAI_AUDIT_TLS_CERT / XCAI_AUDIT_TLS_KEY / XCAI_AUDIT_TLS_CA (default: XCAI_TLS_CERT / XCAI_TLS_KEY / XCAI_TLS_CA)',
    );
  return {
    cert: pem(f.cert, 'the audit client certificate'),
    key: pem(f.key, 'the audit client key'),
    ca: f.ca.map((c) => pem(c, 'the audit trust anchor')),
    servername: f.servername,
    ciphers: f.ciphers,
  };
}

/** The files of the audit TLS settings (watched for changes). */
export function auditTlsFiles(a: AuditSettings): string[] {
  if (a.transport !== 'tls' && a.transport !== 'relp') return [];
  const f = a.tls ?? {};
  return [f.cert, f.key, ...(f.ca ?? [])].filter((x): x is string => !!x);
}

/** The AuditSinkConfig for these settings (reads the PEM files). */
export function gatewayAuditSinkConfig(
  a: AuditSettings,
  o: { role: 'initiating' | 'responding'; service?: string; directory: Directory; log?: Logger },
): AuditSinkConfig {
  const service = o.service ?? `${o.role}-gateway`;
  const transport = a.transport === 'off' ? 'none' : a.transport;
  const tls = auditTlsOptions(a);
  const oid = o.directory.homeCommunityId.replace(/^urn:oid:/, '');
  return {
    transport,
    host: a.host,
    port: a.port,
    tls,
    spoolDir: a.spoolDir ?? DEFAULT_AUDIT_SPOOL_DIR,
    maxSpoolBytes: a.maxSpoolBytes,
    ratePerSecond: a.ratePerSecond,
    retainDays: a.retainDays,
    retainBytes: a.retainBytes,
    source: {
      auditSourceId: a.sourceId ?? `${service}@${hostname()}`,
      auditEnterpriseSiteId: a.enterpriseSiteId ?? oid,
      applicationName: a.appName ?? `xcai-${service}`,
    },
    logger: o.log ? o.log.child({ component: 'audit' }) : undefined,
  };
}

/**
 * Opens the audit trail of a gateway process (see the module comment for the defaults). Throws
 * AuditSettingsError when the configured trail cannot be opened: the process must not start.
 */
export function openGatewayAudit(o: {
  role: 'initiating' | 'responding';
  service?: string;
  settings: AuditSettings;
  directory: Directory;
  log: Logger;
}): GatewayAudit {
  const a = o.settings;
  if (a.transport === 'off') {
    o.log.warn('audit trail OFF (XCAI_AUDIT_TRANSPORT=off): transactions are not audited');
    return { sink: noopAuditSink, mode: 'off', summary: 'off' };
  }
  if (!a.spoolDir) {
    if (a.transport !== 'none')
      throw new AuditSettingsError(`XCAI_AUDIT_TRANSPORT=${a.transport} needs a spool directory`);
    return { sink: noopAuditSink, mode: 'off', summary: 'off (no spool directory configured)' };
  }
  let managed: ManagedAuditSink;
  try {
    managed = createAuditSink(gatewayAuditSinkConfig(a, o));
  } catch (e) {
    const why = (e as Error).message;
    if (a.transport === 'none' && a.spoolDirIsDefault) {
      o.log.error(
        'audit trail DISABLED: the default audit spool directory cannot be used; set XCAI_AUDIT_SPOOL_DIR ' +
          '(and XCAI_AUDIT_TRANSPORT=tls with XCAI_AUDIT_HOST for an Audit Record Repository)',
        { spoolDir: a.spoolDir, reason: why },
      );
      return { sink: noopAuditSink, mode: 'off', summary: `off (default spool unusable: ${why})` };
    }
    if (e instanceof AuditSettingsError) throw e;
    throw new AuditSettingsError(`cannot open the audit spool ${a.spoolDir}: ${why}`);
  }
  const mode = a.transport === 'none' ? 'local' : 'arr';
  return {
    sink: managed,
    managed,
    mode,
    spoolDir: a.spoolDir,
    summary:
      mode === 'local'
        ? `local audit log in ${a.spoolDir} (no Audit Record Repository configured)`
        : `${a.transport} to ${a.host}:${a.port ?? DEFAULT_PORTS[a.transport as keyof typeof DEFAULT_PORTS]}, spool ${a.spoolDir}`,
  };
}

function sha256File(file: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return undefined;
  }
}

/**
 * The records of a gateway start: Application Start, then the configuration it loaded (directory
 * with its peers and trust anchors, TLS identity, audit destination) as a Security Alert.
 */
export function auditGatewayStart(
  sink: AuditSink,
  o: {
    role: 'initiating' | 'responding';
    service?: string;
    directory: Directory;
    directoryFile?: string;
    url: string;
    tlsCertFile?: string;
    audit: string;
  },
): void {
  auditApplicationStart(
    sink,
    `xcai ${(o.service ?? `${o.role}-gateway`).replace(/-/g, ' ')} started at ${o.url}`,
  );
  auditGatewayConfiguration(sink, o);
}

/**
 * The configuration a gateway runs with (directory with its peers and trust anchors, TLS identity,
 * audit destination), as a Security Alert — at start, after a reload (`what` says so), and for a
 * reload that was refused (outcome 4, the old configuration stays).
 */
export function auditGatewayConfiguration(
  sink: AuditSink,
  o: {
    directory: Directory;
    directoryFile?: string;
    tlsCertFile?: string;
    audit: string;
    what?: string;
    outcome?: 0 | 4;
  },
): void {
  const d = o.directory;
  const file = o.directoryFile && o.directoryFile !== '(inline)' ? resolve(o.directoryFile) : undefined;
  const hash = file ? sha256File(file) : undefined;
  const anchors = new Set<string>();
  for (const c of d.communities) for (const t of c.identity?.trustAnchors ?? []) anchors.add(t);
  for (const c of d.consumers) for (const t of c.identity?.trustAnchors ?? []) anchors.add(t);
  const parts = [
    ...(o.what ? [o.what] : []),
    `directory ${file ?? '(in memory)'}${hash ? ` sha256 ${hash}` : ''}`,
    `home ${d.homeCommunityId}`,
    `${d.communities.length} communities`,
    `${d.consumers.length} consumers`,
    `${anchors.size} trust anchor file(s)${[...anchors]
      .map((t) => sha256File(t))
      .filter(Boolean)
      .map((h) => ` ${h?.slice(0, 16)}`)
      .join('')}`,
    o.tlsCertFile ? `TLS certificate sha256 ${sha256File(o.tlsCertFile) ?? '?'}` : 'no TLS',
    `audit ${o.audit}`,
  ];
  auditConfigurationLoaded(sink, {
    objectId: file ? pathToFileURL(file).href : `urn:xcai:directory:${d.homeCommunityId}`,
    description: parts.join('; '),
    kinds: ['software', 'security', 'network'],
    outcome: o.outcome,
  });
}

/** The record of a gateway stop (`reason`: the signal, or what asked for it). */
export function auditGatewayStop(sink: AuditSink, role: string, reason?: string): void {
  auditApplicationStop(
    sink,
    `xcai ${role.includes(' ') ? role : `${role} gateway`} stopping${reason ? ` (${reason})` : ''}`,
    reason,
  );
}
