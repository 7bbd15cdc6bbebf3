/**
 * PRPA_IN201306UV02 "Patient Registry Find Candidates Response" (HL7 V3 NE2008), the answer of
 * ITI-55 (ITI TF-2 3.55.4.2) and ITI-47 (ITI TF-2 3.47.4.2): acknowledgement, one
 * RegistrationEvent per matching patient (with the custodian community for XCPD), the reasons
 * (DetectedIssueEvent) of an answer without a match, the QueryAck and the echoed query.
 */
import type { XmlDocument, XmlElement } from '../xml/parse';
import { attrs, escapeText } from '../xml/write';
import {
  decodeAddress,
  decodeDevice,
  decodeGender,
  decodeIi,
  decodeName,
  decodeTs,
  encodeAddress,
  encodeDevice,
  encodeIi,
  encodeName,
  hl7Child,
  hl7Children,
  hl7Now,
  hl7Path,
  MAX_REPEATS,
} from './datatypes';
import { HL7_NS, type Demographics, type Device, type InstanceId } from './model';
import { INTERACTION_ROOT } from './patient-query';

export type AcknowledgementCode = 'AA' | 'AE' | 'AR';
/** QueryAck.queryResponseCode: OK data found, NF nothing found, AE application error, QE query parameter error. */
export type QueryResponseCode = 'OK' | 'NF' | 'AE' | 'QE';

/** ITI TF-2 3.55.4.2.2.5: does the custodian community support the Health Data Locator. */
export const HEALTH_DATA_LOCATOR_SYSTEM = '1.3.6.1.4.1.19376.1.2.27.2';
/** ITI TF-2 3.55.4.2.2.6: the demographics a Responding Gateway asks for to decide between candidates. */
export const MORE_ATTRIBUTES_SYSTEM = '1.3.6.1.4.1.19376.1.2.27.1';
/** ITI TF-2 3.55.4.2.2.7 (Table 3.55.4.2.2.7-1): AnswerNotAvailable, ResponderBusy, InternalError. */
export const XCPD_ERROR_SYSTEM = '1.3.6.1.4.1.19376.1.2.27.3';
/** HL7 ActCode: the code of every DetectedIssueEvent here. */
const ACT_CODE_SYSTEM = '2.16.840.1.113883.5.4';
/** HL7 AcknowledgementDetailCode. */
const ACK_DETAIL_SYSTEM = '2.16.840.1.113883.5.1100';

export interface CodedIssue {
  code: string;
  codeSystem: string;
}

export interface PatientMatch {
  /** patient/id: the patient's id in the answering community (or supplier). */
  patientId: InstanceId;
  /** patientPerson/asOtherIDs/id: ids of the same person in other domains. */
  otherIds: InstanceId[];
  person: Demographics;
  /** registrationEvent/custodian/assignedEntity/id/@root: XCPD, the homeCommunityId (bare OID). */
  custodian?: string;
  healthDataLocator?: string;
  /** queryMatchObservation value (0–100), when given. */
  score?: number;
}

export interface PatientQueryAnswer {
  messageId: InstanceId;
  acknowledgement: AcknowledgementCode;
  /** Why the request failed (AE/AR), as text for the other side's logs; never PHI. */
  detail?: string;
  /** AcknowledgementDetailCode of `detail` (default SYN for QE, INTERR otherwise; NS250 unsupported mode). */
  detailCode?: string;
  queryResponseCode: QueryResponseCode;
  matches: PatientMatch[];
  /** DetectedIssueEvent/mitigatedBy codes: more attributes requested, or an XCPD error code. */
  issues: CodedIssue[];
}

export interface EncodedAnswerContext {
  sender: Device;
  /** The requester, echoed as receiver. */
  receiver: Device;
  /** The request's message id (acknowledgement/targetMessage). */
  targetMessageId: InstanceId;
  queryId: InstanceId;
  /** The request's QueryByParameter, echoed unchanged (self-contained XML), or '' if it had none. */
  queryByParameterXml: string;
}

function encodePerson(p: Demographics, otherIds: InstanceId[]): string {
  return (
    `<patientPerson classCode="PSN" determinerCode="INSTANCE">` +
    (p.names.length ? p.names.map((n) => encodeName('name', n)).join('') : '<name nullFlavor="UNK"/>') +
    (p.gender ? `<administrativeGenderCode${attrs({ code: p.gender })}/>` : '') +
    (p.birthTime ? `<birthTime${attrs({ value: p.birthTime })}/>` : '') +
    p.addresses.map((a) => encodeAddress('addr', a)).join('') +
    otherIds
      .map(
        (id) =>
          `<asOtherIDs classCode="PAT">${encodeIi('id', id)}<scopingOrganization classCode="ORG" determinerCode="INSTANCE">` +
          `${encodeIi('id', { root: id.root })}</scopingOrganization></asOtherIDs>`,
      )
      .join('') +
    `</patientPerson>`
  );
}

/** One RegistrationEvent; the custodian defaults to the answering system. */
function encodeSubject(m: PatientMatch, answering: string): string {
  const score =
    m.score === undefined
      ? ''
      : `<subjectOf1><queryMatchObservation classCode="COND" moodCode="EVN"><code code="IHE_PDQ"/>` +
        `<value xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="INT"${attrs({ value: m.score })}/>` +
        `</queryMatchObservation></subjectOf1>`;
  const locator = m.healthDataLocator
    ? `<code${attrs({ code: m.healthDataLocator, codeSystem: HEALTH_DATA_LOCATOR_SYSTEM })}/>`
    : '';
  return (
    `<subject typeCode="SUBJ"><registrationEvent classCode="REG" moodCode="EVN"><id nullFlavor="NA"/>` +
    `<statusCode code="active"/><subject1 typeCode="SBJ"><patient classCode="PAT">` +
    encodeIi('id', m.patientId) +
    `<statusCode code="active"/>` +
    encodePerson(m.person, m.otherIds) +
    score +
    `</patient></subject1>` +
    `<custodian typeCode="CST"><assignedEntity classCode="ASSIGNED">` +
    encodeIi('id', { root: m.custodian ?? answering }) +
    locator +
    `</assignedEntity></custodian></registrationEvent></subject>`
  );
}

function encodeIssues(issues: CodedIssue[]): string {
  if (!issues.length) return '';
  return (
    `<reasonOf typeCode="RSON"><detectedIssueEvent classCode="ALRT" moodCode="EVN">` +
    `<code code="ActAdministrativeDetectedIssueCode" codeSystem="${ACT_CODE_SYSTEM}"/>` +
    issues
      .map(
        (i) =>
          `<mitigatedBy typeCode="MITGT"><detectedIssueManagement classCode="ACT" moodCode="EVN">` +
          `<code${attrs({ code: i.code, codeSystem: i.codeSystem })}/></detectedIssueManagement></mitigatedBy>`,
      )
      .join('') +
    `</detectedIssueEvent></reasonOf>`
  );
}

export function encodePatientQueryAnswer(
  a: PatientQueryAnswer,
  c: EncodedAnswerContext,
  creationTime = hl7Now(),
): string {
  const detail = a.detail
    ? `<acknowledgementDetail typeCode="E"><code code="${a.detailCode ?? (a.queryResponseCode === 'QE' ? 'SYN' : 'INTERR')}" codeSystem="${ACK_DETAIL_SYSTEM}"/>` +
      `<text>${escapeText(a.detail.slice(0, 500))}</text></acknowledgementDetail>`
    : '';
  const total = a.queryResponseCode === 'OK' || a.queryResponseCode === 'NF' ? a.matches.length : undefined;
  return (
    `<PRPA_IN201306UV02 xmlns="${HL7_NS}" ITSVersion="XML_1.0">` +
    encodeIi('id', a.messageId) +
    `<creationTime${attrs({ value: creationTime })}/>` +
    `<interactionId root="${INTERACTION_ROOT}" extension="PRPA_IN201306UV02"/>` +
    `<processingCode code="P"/><processingModeCode code="T"/><acceptAckCode code="NE"/>` +
    encodeDevice('receiver', c.receiver) +
    encodeDevice('sender', c.sender) +
    `<acknowledgement><typeCode${attrs({ code: a.acknowledgement })}/>` +
    `<targetMessage>${encodeIi('id', c.targetMessageId)}</targetMessage>${detail}</acknowledgement>` +
    `<controlActProcess classCode="CACT" moodCode="EVN">` +
    `<code code="PRPA_TE201306UV02" codeSystem="${INTERACTION_ROOT}"/>` +
    a.matches.map((m) => encodeSubject(m, c.sender.id.root)).join('') +
    encodeIssues(a.issues) +
    `<queryAck>${encodeIi('queryId', c.queryId)}` +
    `<statusCode code="${a.acknowledgement === 'AA' ? 'deliveredResponse' : 'aborted'}"/>` +
    `<queryResponseCode${attrs({ code: a.queryResponseCode })}/>` +
    (total === undefined
      ? ''
      : `<resultTotalQuantity value="${total}"/><resultCurrentQuantity value="${total}"/>` +
        `<resultRemainingQuantity value="0"/>`) +
    `</queryAck>` +
    c.queryByParameterXml +
    `</controlActProcess></PRPA_IN201306UV02>`
  );
}

export interface DecodedPatientQueryAnswer extends PatientQueryAnswer {
  targetMessageId?: InstanceId;
  queryId?: InstanceId;
  sender?: Device;
  /** More RegistrationEvents than we read (MAX_REPEATS). */
  truncated: boolean;
}

/** Reads a PRPA_IN201306UV02. Throws when it is not one, or lacks the acknowledgement or queryAck. */
export function decodePatientQueryAnswer(_doc: XmlDocument, el: XmlElement): DecodedPatientQueryAnswer {
  if (!el.is(HL7_NS, 'PRPA_IN201306UV02'))
    throw new Error(`expected hl7:PRPA_IN201306UV02, found {${el.ns}}${el.local}`);
  const ack = hl7Child(el, 'acknowledgement');
  const ackCode = hl7Child(ack, 'typeCode')?.attr('code');
  if (ackCode !== 'AA' && ackCode !== 'AE' && ackCode !== 'AR')
    throw new Error(`acknowledgement/typeCode is ${ackCode ?? 'missing'} (AA, AE or AR expected)`);
  const cap = hl7Child(el, 'controlActProcess');
  const qack = hl7Child(cap, 'queryAck');
  const rc = hl7Child(qack, 'queryResponseCode')?.attr('code');
  if (rc !== 'OK' && rc !== 'NF' && rc !== 'AE' && rc !== 'QE')
    throw new Error(`queryAck/queryResponseCode is ${rc ?? 'missing'} (OK, NF, AE or QE expected)`);
  const subjects = hl7Children(cap, 'subject');
  const matches: PatientMatch[] = [];
  for (const s of subjects.slice(0, MAX_REPEATS)) {
    const reg = hl7Child(s, 'registrationEvent');
    const patient = hl7Path(reg, 'subject1', 'patient');
    const patientId = decodeIi(hl7Child(patient, 'id'));
    if (!patientId) throw new Error('a registrationEvent has no subject1/patient/id');
    const person = hl7Child(patient, 'patientPerson');
    const score = hl7Path(patient, 'subjectOf1', 'queryMatchObservation', 'value')?.attr('value');
    const entity = hl7Path(reg, 'custodian', 'assignedEntity');
    matches.push({
      patientId,
      otherIds: hl7Children(person, 'asOtherIDs')
        .slice(0, MAX_REPEATS)
        .map((o) => decodeIi(hl7Child(o, 'id')))
        .filter((i): i is InstanceId => i !== undefined),
      person: {
        names: hl7Children(person, 'name').slice(0, MAX_REPEATS).map(decodeName),
        gender: decodeGender(hl7Child(person, 'administrativeGenderCode')?.attr('code')),
        birthTime: decodeTs(hl7Child(person, 'birthTime')?.attr('value')),
        addresses: hl7Children(person, 'addr').slice(0, MAX_REPEATS).map(decodeAddress),
      },
      custodian: decodeIi(hl7Child(entity, 'id'))?.root,
      healthDataLocator: hl7Child(entity, 'code')?.attr('code'),
      score: score !== undefined && /^\d{1,3}$/.test(score) ? Number(score) : undefined,
    });
  }
  const issues: CodedIssue[] = hl7Children(cap, 'reasonOf')
    .slice(0, MAX_REPEATS)
    .flatMap((r) => hl7Children(hl7Child(r, 'detectedIssueEvent'), 'mitigatedBy').slice(0, MAX_REPEATS))
    .map((m) => hl7Path(m, 'detectedIssueManagement', 'code'))
    .map((c) => ({ code: c?.attr('code') ?? '', codeSystem: c?.attr('codeSystem') ?? '' }))
    .filter((i) => i.code);
  return {
    messageId: decodeIi(hl7Child(el, 'id')) ?? { root: 'unknown' },
    acknowledgement: ackCode,
    detail: hl7Path(ack, 'acknowledgementDetail', 'text')?.trimmedText().slice(0, 300) || undefined,
    queryResponseCode: rc,
    matches,
    issues,
    targetMessageId: decodeIi(hl7Path(ack, 'targetMessage', 'id')),
    queryId: decodeIi(hl7Child(qack, 'queryId')),
    sender: decodeDevice(hl7Child(el, 'sender')),
    truncated: subjects.length > MAX_REPEATS,
  };
}
