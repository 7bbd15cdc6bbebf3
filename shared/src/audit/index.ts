/** ATNA audit module (ITI-20): records, spool, transport, repository, reports. */
export * from './event';
export {
  buildAuditMessages,
  TRANSACTIONS as AUDIT_TRANSACTIONS,
  EVENT_ID as AUDIT_EVENT_ID,
  EVENT_TYPE as AUDIT_EVENT_TYPE,
  type BuildOptions as AuditBuildOptions,
} from './messages';
export {
  createAuditSink,
  stderrAuditLogger,
  type AuditSinkConfig,
  type AuditSinkMetrics,
  type ManagedAuditSink,
  type AuditLogger,
} from './sink';
export { auditSinkConfigFromEnv } from './config';
export * from './gateway';
export { PatientLinks, documentEntryLinks } from './patient-links';
export {
  verifySpool,
  type VerifyResult as SpoolVerifyResult,
  type SpoolRecord as AuditSpoolRecord,
} from './spool';
export {
  startAuditRepository,
  type AuditRepository,
  type AuditRepositoryOptions,
  type AuditRepositoryStats,
  type StoredAuditRecord,
} from './repository';
export {
  buildAccessReport,
  formatReportText,
  parseAuditRecord,
  type AuditRecordView,
  type ReportOptions,
} from './report';
export {
  formatSyslogMessage,
  frameOctetCounted,
  parseSyslogMessage,
  OctetCountingDecoder,
  DEFAULT_SD_ID as AUDIT_SD_ID,
  type ParsedSyslog,
} from './syslog';
export { DEFAULT_AUDIT_CIPHERS, type AuditTlsOptions } from './transport';
