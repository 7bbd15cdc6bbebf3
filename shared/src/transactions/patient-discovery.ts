/**
 * Building blocks shared by the patient discovery transactions — ITI-55 Cross Gateway Patient
 * Discovery (both gateways) and ITI-47 Patient Demographics Query (the gateways as consumers, the
 * reference MPI as supplier): the sub-request, the answers, the audit records (ITI TF-2 3.55.5.1,
 * 3.47.5.1: DICOM "Query", the QueryByParameter, the patients, homeCommunityId for ITI-55).
 */
import { randomUUID } from 'node:crypto';
import type { EventOutcome, TransactionAuditEvent, AuditParticipant } from '../audit/event';
import type { RegistryError } from '../ebrim/status';
import type { CallFailure } from '../outbound/client';
import type { Call, Ctx, Reply, Target } from '../pipeline/transaction';
import { SoapFault } from '../soap/fault';
import { homeOid, iiToPatientId, patientCx } from '../hl7v3/cx';
import type { Device, InstanceId } from '../hl7v3/model';
import {
  decodePatientQuery,
  encodePatientQuery,
  queryIdText,
  type DecodedPatientQuery,
  type PatientQuery,
} from '../hl7v3/patient-query';
import {
  decodePatientQueryAnswer,
  encodePatientQueryAnswer,
  type DecodedPatientQueryAnswer,
  type PatientQueryAnswer,
} from '../hl7v3/patient-response';
import { withReleaseNote } from '../disclosure/notes';
import { Action } from './actions';

export type PatientQueryKind = 'ITI-55' | 'ITI-47';

/** Reads the request body of an ITI-55 / ITI-47 (a wrong body element is a SOAP fault). */
export function decodePatientQueryRequest(ctx: Ctx): DecodedPatientQuery {
  try {
    return decodePatientQuery(ctx.envelope.doc, ctx.envelope.payload);
  } catch (e) {
    throw SoapFault.sender((e as Error).message);
  }
}

/** A sub-request: ITI-55 to a Responding Gateway, or ITI-47 to a Patient Demographics Supplier. */
export function patientQueryCall(
  target: Target,
  kind: PatientQueryKind,
  query: PatientQuery,
  failed: (why: CallFailure) => RegistryError[],
): Call<DecodedPatientQueryAnswer> & { query: PatientQuery } {
  return {
    target,
    query,
    action: kind === 'ITI-55' ? Action.ITI55 : Action.ITI47,
    responseAction: kind === 'ITI-55' ? Action.ITI55Response : Action.ITI47Response,
    body: encodePatientQuery(query),
    mtom: false,
    read: async (res) => decodePatientQueryAnswer(res.envelope.doc, res.envelope.payload),
    failed,
  };
}

/** A fresh query of ours: message and query ids are UUIDs. */
export function newPatientQuery(
  o: Omit<PatientQuery, 'messageId' | 'queryId' | 'responsePriority' | 'scopingOrganizations'> &
    Partial<Pick<PatientQuery, 'scopingOrganizations'>>,
): PatientQuery {
  return {
    ...o,
    messageId: { root: randomUUID() },
    queryId: { root: randomUUID() },
    responsePriority: 'I',
    scopingOrganizations: o.scopingOrganizations ?? [],
  };
}

/** Our gateway as the sending device: the community OID, which XCPD also needs as the organization. */
export function ownDevice(ctx: Ctx): Device {
  const oid = homeOid(ctx.gateway.directory.homeCommunityId);
  return { id: { root: oid }, organization: oid };
}

/** The answer to a decoded request: our device as sender, the request's echoed as HL7 V3 wants. */
export function encodePatientAnswer(req: DecodedPatientQuery, a: PatientQueryAnswer, ctx: Ctx): Reply {
  return {
    kind: 'xml',
    payload: encodePatientQueryAnswer(a, {
      sender: ownDevice(ctx),
      receiver: req.sender,
      targetMessageId: req.messageId,
      queryId: req.queryId,
      queryByParameterXml: req.queryByParameterXml,
    }),
  };
}

/** An application error answer (AE), e.g. a request without the required parameters (QE). */
export function errorAnswer(
  code: 'AE' | 'QE',
  detail: string,
  issues: PatientQueryAnswer['issues'] = [],
): PatientQueryAnswer {
  return {
    messageId: { root: randomUUID() },
    acknowledgement: 'AE',
    detail,
    queryResponseCode: code,
    matches: [],
    issues,
  };
}

/** The patient ids (CX) an answer names. */
export function answerPatientIds(a: PatientQueryAnswer | undefined): string[] {
  return (a?.matches ?? [])
    .map((m) => iiToPatientId(m.patientId))
    .filter((p) => p !== undefined)
    .map(patientCx);
}

export function idsAsCx(ids: InstanceId[]): string[] {
  return ids
    .map(iiToPatientId)
    .filter((p) => p !== undefined)
    .map(patientCx);
}

export function answerOutcome(a: PatientQueryAnswer | undefined): EventOutcome {
  if (!a) return 8;
  return a.acknowledgement === 'AA' ? 0 : a.queryResponseCode === 'QE' ? 4 : 8;
}

/** An audit record of one end of an ITI-55 / ITI-47 exchange. */
export function patientQueryAuditEvent(o: {
  kind: PatientQueryKind;
  side: 'requester' | 'responder';
  queryId: InstanceId;
  queryByParameterXml: string;
  patientIds: string[];
  /** ITI-55: the other community's homeCommunityId. */
  home?: string;
  outcome: EventOutcome;
  description?: string;
  participants: { requester: AuditParticipant; responder: AuditParticipant };
  ctx: Ctx;
}): TransactionAuditEvent {
  const ev: TransactionAuditEvent = {
    kind: 'transaction',
    transaction: o.kind,
    side: o.side,
    eventDateTime: new Date(),
    ...o.participants,
    humanRequestors: o.ctx.humanRequestors,
    patientIds: [...new Set(o.patientIds)],
    query: {
      storedQueryId: queryIdText(o.queryId),
      requestXml: Buffer.from(o.queryByParameterXml),
      homeCommunityId: o.kind === 'ITI-55' ? o.home : undefined,
    },
    outcome: o.outcome,
    outcomeDescription: o.description,
    groups: [],
    messageId: o.ctx.envelope.wsa.messageId,
  };
  // The served record says what the disclosure rules withheld or overrode (consent, break-glass).
  return o.side === 'responder' ? withReleaseNote(ev, o.ctx) : ev;
}
