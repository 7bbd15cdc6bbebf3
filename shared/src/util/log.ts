/**
 * Structured JSON logs on stdout. Info-level records carry no PHI: transaction names, communities,
 * error codes, counts and timings only. Patient ids and document ids appear at debug level only;
 * as a safety net, fields named like them (PHI_FIELDS) are redacted from records above debug.
 * Records written while a trace span is active carry its trace_id and span_id.
 */
import { context, trace } from '@opentelemetry/api';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Field names that hold patient or document identifiers: written at debug level only. */
export const PHI_FIELDS: ReadonlySet<string> = new Set([
  'patient',
  'patientId',
  'patientIds',
  'patientName',
  'sourcePatientId',
  'sourcePatientInfo',
  'documentId',
  'documentUniqueId',
  'uniqueId',
  'entryUUID',
  'studyInstanceUid',
  'seriesInstanceUid',
  'sopInstanceUid',
  'requestXml',
]);

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/** Reads a level name; "trace" (the Helm chart's most verbose level) means debug. */
export function parseLogLevel(v: string | undefined): LogLevel {
  const l = (v ?? '').trim().toLowerCase();
  if (l === 'trace') return 'debug';
  return l in ORDER ? (l as LogLevel) : 'info';
}

export function createLogger(
  base: Record<string, unknown> = {},
  level: LogLevel = parseLogLevel(process.env.XCAI_LOG_LEVEL),
  write: (line: string) => void = (l) => process.stdout.write(l + '\n'),
): Logger {
  const min = ORDER[level] ?? ORDER.info;
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    const rec: Record<string, unknown> = {
      time: new Date().toISOString(),
      level: lvl,
      msg,
      ...base,
      ...fields,
    };
    for (const [k, v] of Object.entries(rec)) {
      if (v instanceof Error) rec[k] = v.message;
      if (lvl !== 'debug' && PHI_FIELDS.has(k) && v !== undefined) rec[k] = '[redacted]';
    }
    const span = trace.getSpan(context.active())?.spanContext();
    if (span && trace.isSpanContextValid(span)) {
      rec.trace_id = span.traceId;
      rec.span_id = span.spanId;
    }
    write(JSON.stringify(rec));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => createLogger({ ...base, ...f }, level, write),
  };
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
