/**
 * What a transaction tells the audit stage. The ATNA module turns one of these into one or more
 * DICOM PS3.15 A.5 AuditMessages (one per outcome class) following the IHE audit tables.
 * Transaction modules fill this in; they never build audit XML themselves.
 */

export type AuditedTransaction =
  | 'ITI-18'
  | 'ITI-38'
  | 'ITI-39'
  | 'ITI-43'
  | 'RAD-69'
  | 'RAD-75'
  | 'ITI-55'
  | 'ITI-47'
  /** Submissions: Provide and Register (Imaging) Document Set, Register Document Set. */
  | 'ITI-41'
  | 'RAD-68'
  | 'ITI-42';

/** DICOM EventOutcomeIndicator: 0 success, 4 minor failure, 8 serious failure, 12 major failure. */
export type EventOutcome = 0 | 4 | 8 | 12;

/** One end of the exchange, as seen on the wire. */
export interface AuditParticipant {
  /** Requester: its wsa:ReplyTo (or the anonymous URI); responder: the endpoint URI it serves at. */
  userId: string;
  /** Process id or other alternative id (requester side only, by IHE convention). */
  alternativeUserId?: string;
  /** Host name or IP address of the node. */
  networkAccessPointId?: string;
  /** Certificate subject when the peer authenticated with TLS. */
  certificateSubject?: string;
}

/** The human requestor from a validated XUA assertion. */
export interface HumanRequestor {
  userId: string;
  userName?: string;
  /** Role codes from the assertion (code, codeSystem, displayName). */
  roles: { code: string; codeSystem?: string; displayName?: string }[];
  /** Home community or organisation the assertion names, when present. */
  organization?: string;
}

/** An HL7 PurposeOfUse code of a validated XUA assertion. */
export interface PurposeOfUse {
  code: string;
  codeSystem?: string;
  displayName?: string;
}

export interface AuditedDocument {
  documentUniqueId: string;
  repositoryUniqueId: string;
  homeCommunityId?: string;
}

export interface AuditedStudy {
  studyInstanceUid: string;
  series: { seriesInstanceUid: string; sopInstanceUids: string[] }[];
  repositoryUniqueId: string;
  homeCommunityId?: string;
}

/** One outcome class of a transaction (a partly failed retrieve gives two: the delivered and the failed). */
export interface AuditOutcomeGroup {
  outcome: EventOutcome;
  /** Free text for failures (error codes), recorded as EventOutcomeDescription where the schema allows. */
  description?: string;
  documents?: AuditedDocument[];
  studies?: AuditedStudy[];
}

export interface TransactionAuditEvent {
  kind: 'transaction';
  transaction: AuditedTransaction;
  /** Which end of the transaction this record is written by. */
  side: 'requester' | 'responder';
  eventDateTime: Date;
  /** The requesting system (wsa:ReplyTo as UserID). */
  requester: AuditParticipant;
  /** The responding system (its endpoint URI as UserID). */
  responder: AuditParticipant;
  humanRequestors: HumanRequestor[];
  /** Patient id in HL7 CX form (`id^^^&oid&ISO`) when the transaction names one. */
  patientIds: string[];
  /**
   * Queries: ITI-18 / ITI-38 the stored query id and the AdhocQueryRequest; ITI-55 / ITI-47 the
   * HL7 V3 query id and the QueryByParameter.
   */
  query?: {
    storedQueryId: string;
    /** The query element, UTF-8 bytes. */
    requestXml: Buffer;
    homeCommunityId?: string;
  };
  /** Overall outcome for queries; retrieves use `groups`. */
  outcome: EventOutcome;
  outcomeDescription?: string;
  /** Retrieves: one entry per outcome class. */
  groups: AuditOutcomeGroup[];
  /** wsa:MessageID of the request, for correlating the two ends. */
  messageId?: string;
  /** W3C trace id, when tracing is on. */
  traceId?: string;
  /** XUA PurposeOfUse codes from the assertion (written as EventIdentification/PurposeOfUse). */
  purposesOfUse?: readonly PurposeOfUse[];
  /**
   * Queries, served side: the registry objects of the answer (serialised). NOT written into the
   * record; the sink reads patient ↔ document/study links from them to name the patient in later
   * retrieve records of the same objects (see patient-links.ts), then drops them.
   */
  resultObjects?: readonly string[];
  /** Submissions (ITI-41 / RAD-68 / ITI-42): the SubmissionSet's uniqueId. */
  submissionSetUniqueId?: string;
}

/** Security-relevant events that are not one of the six transactions. */
export interface SecurityAuditEvent {
  kind:
    | 'node-authentication-failure'
    | 'rejected-async-response'
    | 'configuration-loaded'
    | 'application-start'
    | 'application-stop'
    /** R11: a refusal by consent was overridden for an emergency (break-glass). */
    | 'emergency-override';
  eventDateTime: Date;
  outcome: EventOutcome;
  description: string;
  /** The remote node involved, when there is one. */
  peer?: AuditParticipant;
  /** Configuration file or other object concerned. */
  objectId?: string;
  /**
   * configuration-loaded only: which kinds of configuration the load changed (DICOM Security Alert
   * type codes 110131 Software / 110129 Security / 110128 Network Configuration). Default ['software'].
   */
  configurationKinds?: ('software' | 'security' | 'network')[];
  /** emergency-override: who asked, for what purpose, whose data. */
  humanRequestors?: HumanRequestor[];
  purposesOfUse?: readonly PurposeOfUse[];
  patientIds?: string[];
}

export type AuditEvent = TransactionAuditEvent | SecurityAuditEvent;

/** Who writes the record: DICOM AuditSourceIdentification plus the identity of this process. */
export interface AuditSourceInfo {
  /** AuditSourceID: the identity of this gateway instance (e.g. its node OID or host name). */
  auditSourceId: string;
  /** AuditEnterpriseSiteID: the site / organisation (e.g. the home community OID). */
  auditEnterpriseSiteId?: string;
  /** AuditSourceTypeCode (DCM): '4' application server process (default), '3' web server, ... */
  auditSourceTypeCode?: string;
  /** Application name: syslog APP-NAME and the UserID of this application in security records. */
  applicationName?: string;
  /** Host name written into security records and the syslog HOSTNAME (default os.hostname()). */
  hostName?: string;
}

/** The audit stage. `record` never blocks the request path and never throws. */
export interface AuditSink {
  record(event: AuditEvent): void;
  /** Flushes what is spooled; resolves when delivered or on timeout. */
  close(): Promise<void>;
}

export const noopAuditSink: AuditSink = {
  record: () => undefined,
  close: async () => undefined,
};
