/**
 * What a gateway process needs from the audit module beyond `record()`: the fail-closed check the
 * engine runs before each transaction, and one function per security / application event, so that
 * every place that audits one (engine, async receiver, TLS server, start-up) writes the same record.
 */
import { SoapFault } from '../soap/fault';
import type {
  AuditParticipant,
  AuditSink,
  EventOutcome,
  HumanRequestor,
  PurposeOfUse,
  SecurityAuditEvent,
} from './event';

/** The health/metrics surface of a ManagedAuditSink, when the sink has one. */
interface HealthReporting {
  healthy(): boolean;
}

function reportsHealth(sink: AuditSink): sink is AuditSink & HealthReporting {
  return typeof (sink as Partial<HealthReporting>).healthy === 'function';
}

/** The reason text of the fault a refused transaction gets (stable: tests and operators grep it). */
export const AUDIT_UNAVAILABLE_REASON =
  'the gateway cannot record an audit trail right now (audit spool full or not writable); ' +
  'no transaction is served until auditing recovers';

/**
 * Fail closed: a SOAP Receiver fault when the sink says it cannot take records (spool full,
 * spool not writable, queue full, closed); undefined when the transaction may go ahead. A sink
 * without `healthy()` (tests' memory sinks, the no-op sink) never refuses.
 */
export function auditRefusal(sink: AuditSink): SoapFault | undefined {
  if (!reportsHealth(sink)) return undefined;
  let ok: boolean;
  try {
    ok = sink.healthy();
  } catch {
    ok = false;
  }
  return ok ? undefined : SoapFault.receiver(AUDIT_UNAVAILABLE_REASON);
}

/** The remote end of a connection or request, as audit records name it. */
export interface AuditPeer {
  remoteAddress?: string;
  remotePort?: number;
  /** Subject of the certificate the peer presented, when it presented one. */
  certificateSubject?: string;
}

function peerParticipant(p: AuditPeer): AuditParticipant {
  const host = p.remoteAddress?.replace(/^::ffff:/, '');
  return {
    userId: host
      ? `tls://${host.includes(':') ? `[${host}]` : host}${p.remotePort ? `:${p.remotePort}` : ''}`
      : 'unknown',
    networkAccessPointId: host,
    certificateSubject: p.certificateSubject,
  };
}

function record(sink: AuditSink, ev: SecurityAuditEvent): void {
  try {
    sink.record(ev);
  } catch {
    // record() never throws by contract; a foreign sink must not break the caller either
  }
}

/**
 * A peer failed node authentication (TLS handshake refused: no certificate, untrusted chain,
 * expired; or a trusted certificate that names no community/consumer of the directory).
 * DICOM Security Alert 110113 / 110126 Node Authentication; subject = the certificate subject
 * (else the address). Call it once per refused connection or request.
 */
export function auditNodeAuthenticationFailure(
  sink: AuditSink,
  o: AuditPeer & { reason: string; outcome?: EventOutcome },
): void {
  record(sink, {
    kind: 'node-authentication-failure',
    eventDateTime: new Date(),
    outcome: o.outcome ?? 8,
    description: o.reason.slice(0, 500),
    peer: peerParticipant(o),
  });
}

/**
 * The async response endpoint refused a message: it names no request of ours, no pending one, or
 * comes from another node than the community asked (or an unauthenticated hand-over). DICOM
 * Security Alert 110113 / 110132 Use of Restricted Function; subject = the RelatesTo value.
 */
export function auditRejectedAsyncResponse(
  sink: AuditSink,
  o: AuditPeer & { reason: string; relatesTo?: string; outcome?: EventOutcome },
): void {
  record(sink, {
    kind: 'rejected-async-response',
    eventDateTime: new Date(),
    outcome: o.outcome ?? 4,
    description: o.reason.slice(0, 500),
    peer: peerParticipant(o),
    objectId: o.relatesTo ? o.relatesTo.slice(0, 256) : undefined,
  });
}

/**
 * The configuration this process runs with was loaded (directory, trust anchors, peers). DICOM
 * Security Alert 110113 with 110131 Software / 110129 Security / 110128 Network Configuration.
 */
export function auditConfigurationLoaded(
  sink: AuditSink,
  o: {
    objectId: string;
    description: string;
    kinds?: ('software' | 'security' | 'network')[];
    /** 0 loaded; 4 refused (e.g. a reload with a bad file: the previous configuration stays). */
    outcome?: 0 | 4;
  },
): void {
  record(sink, {
    kind: 'configuration-loaded',
    eventDateTime: new Date(),
    outcome: o.outcome ?? 0,
    description: o.description.slice(0, 1000),
    objectId: o.objectId,
    configurationKinds: o.kinds ?? ['software', 'security', 'network'],
  });
}

/** Application Activity 110100 / 110120 Application Start. */
export function auditApplicationStart(sink: AuditSink, description: string): void {
  record(sink, { kind: 'application-start', eventDateTime: new Date(), outcome: 0, description });
}

/** Application Activity 110100 / 110121 Application Stop; `launcher` = who asked (e.g. the signal). */
export function auditApplicationStop(sink: AuditSink, description: string, launcher?: string): void {
  record(sink, {
    kind: 'application-stop',
    eventDateTime: new Date(),
    outcome: 0,
    description,
    peer: launcher ? { userId: launcher } : undefined,
  });
}

/**
 * R11: data was released for an emergency although consent refused it (break-glass). DICOM
 * Security Alert 110113 / 110127 Emergency Override Started, naming the requesting system, the
 * user, the PurposeOfUse and the patient, so the access report lists it with the patient's records.
 */
export function auditEmergencyOverride(
  sink: AuditSink,
  o: {
    requester: AuditParticipant;
    humanRequestors: HumanRequestor[];
    purposesOfUse: readonly PurposeOfUse[];
    patientId: string;
    community: string;
    description: string;
  },
): void {
  record(sink, {
    kind: 'emergency-override',
    eventDateTime: new Date(),
    outcome: 0,
    description: o.description.slice(0, 500),
    peer: o.requester,
    objectId: o.community,
    humanRequestors: o.humanRequestors,
    purposesOfUse: o.purposesOfUse,
    patientIds: [o.patientId],
  });
}
