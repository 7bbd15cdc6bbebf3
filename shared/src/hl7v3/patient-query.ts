/**
 * PRPA_IN201305UV02 "Patient Registry Query by Demographics" (HL7 V3 NE2008), the request of ITI-55
 * Cross Gateway Patient Discovery (ITI TF-2 3.55.4.1) and ITI-47 Patient Demographics Query HL7 V3
 * (ITI TF-2 3.47.4.1): the transmission wrapper, the control act and the QueryByParameter.
 */
import type { XmlDocument, XmlElement } from '../xml/parse';
import { attrs, relayElement } from '../xml/write';
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

export const INTERACTION_ROOT = '2.16.840.1.113883.1.6';

export interface PatientQuery {
  messageId: InstanceId;
  sender: Device;
  receivers: Device[];
  /**
   * controlActProcess/authorOrPerformer/assignedDevice/id/@root: the assigning authority of the
   * sender community's patient ids (the LivingSubjectId it names as its own; ITI TF-2 3.55.4.1.2.4).
   */
  senderAssigningAuthority?: string;
  queryId: InstanceId;
  /** I (immediate) or D (deferred, ITI-55 Deferred Response Option). */
  responsePriority: string;
  /** LivingSubjectId values. */
  ids: InstanceId[];
  demographics: Demographics;
  /** ITI-47: the assigning authorities whose ids the answer should carry (OtherIDsScopingOrganization). */
  scopingOrganizations: string[];
}

export interface DecodedPatientQuery extends PatientQuery {
  doc: XmlDocument;
  element: XmlElement;
  /** The QueryByParameter as received, self-contained: the echo in the answer and the audited query. */
  queryByParameterXml: string;
  /** Missing or malformed parts (→ an AE/QE answer, not a fault). */
  problems: string[];
}

const param = (name: string, value: string, semantics: string) =>
  `<${name}>${value}<semanticsText>${semantics}</semanticsText></${name}>`;

/** The QueryByParameter element (also what audit records carry as ParticipantObjectQuery). */
export function encodeQueryByParameter(q: PatientQuery): string {
  const d = q.demographics;
  const list =
    (d.gender
      ? param(
          'livingSubjectAdministrativeGender',
          `<value${attrs({ code: d.gender })}/>`,
          'LivingSubject.administrativeGender',
        )
      : '') +
    (d.birthTime
      ? param('livingSubjectBirthTime', `<value${attrs({ value: d.birthTime })}/>`, 'LivingSubject.birthTime')
      : '') +
    q.ids.map((id) => param('livingSubjectId', encodeIi('value', id), 'LivingSubject.id')).join('') +
    // One LivingSubjectName per representation (kanji, kana, romaji): each carries one value.
    d.names.map((n) => param('livingSubjectName', encodeName('value', n), 'LivingSubject.name')).join('') +
    q.scopingOrganizations
      .map((o) =>
        param(
          'otherIDsScopingOrganization',
          encodeIi('value', { root: o }),
          'OtherIDs.scopingOrganization.id',
        ),
      )
      .join('') +
    d.addresses.map((a) => param('patientAddress', encodeAddress('value', a), 'Patient.addr')).join('');
  return (
    `<queryByParameter xmlns="${HL7_NS}">${encodeIi('queryId', q.queryId)}<statusCode code="new"/>` +
    `<responseModalityCode code="R"/><responsePriorityCode${attrs({ code: q.responsePriority })}/>` +
    `<parameterList>${list}</parameterList></queryByParameter>`
  );
}

export function encodePatientQuery(q: PatientQuery, creationTime = hl7Now()): string {
  const author = q.senderAssigningAuthority
    ? `<authorOrPerformer typeCode="AUT"><assignedDevice classCode="ASSIGNED">` +
      `${encodeIi('id', { root: q.senderAssigningAuthority })}</assignedDevice></authorOrPerformer>`
    : '';
  return (
    `<PRPA_IN201305UV02 xmlns="${HL7_NS}" ITSVersion="XML_1.0">` +
    encodeIi('id', q.messageId) +
    `<creationTime${attrs({ value: creationTime })}/>` +
    `<interactionId root="${INTERACTION_ROOT}" extension="PRPA_IN201305UV02"/>` +
    `<processingCode code="P"/><processingModeCode code="T"/><acceptAckCode code="AL"/>` +
    q.receivers.map((r) => encodeDevice('receiver', r)).join('') +
    encodeDevice('sender', q.sender) +
    `<controlActProcess classCode="CACT" moodCode="EVN">` +
    `<code code="PRPA_TE201305UV02" codeSystem="${INTERACTION_ROOT}"/>` +
    author +
    encodeQueryByParameter(q) +
    `</controlActProcess></PRPA_IN201305UV02>`
  );
}

/**
 * Reads a PRPA_IN201305UV02. Throws only when the element is not one at all (→ SOAP fault); missing
 * or malformed required parts are listed in `problems` (→ an application error answer).
 */
export function decodePatientQuery(doc: XmlDocument, el: XmlElement): DecodedPatientQuery {
  if (!el.is(HL7_NS, 'PRPA_IN201305UV02'))
    throw new Error(`expected hl7:PRPA_IN201305UV02, found {${el.ns}}${el.local}`);
  const problems: string[] = [];
  const need = <T>(v: T | undefined, what: string): T | undefined => {
    if (v === undefined) problems.push(`${what} is missing`);
    return v;
  };
  const messageId = need(decodeIi(hl7Child(el, 'id')), 'id');
  const sender = need(decodeDevice(hl7Child(el, 'sender')), 'sender/device/id');
  const receivers = hl7Children(el, 'receiver')
    .slice(0, MAX_REPEATS)
    .map(decodeDevice)
    .filter((d): d is Device => d !== undefined);
  const cap = hl7Child(el, 'controlActProcess');
  const qbp = hl7Child(cap, 'queryByParameter');
  const list = hl7Child(qbp, 'parameterList');
  if (!qbp) problems.push('controlActProcess/queryByParameter is missing');
  else if (!list) problems.push('queryByParameter/parameterList is missing');
  const queryId = qbp ? need(decodeIi(hl7Child(qbp, 'queryId')), 'queryByParameter/queryId') : undefined;
  const values = (name: string) =>
    hl7Children(list, name)
      .slice(0, MAX_REPEATS)
      .flatMap((p) => hl7Children(p, 'value').slice(0, MAX_REPEATS));
  const tooMany = (name: string, max: number) => {
    if (hl7Children(list, name).length > max) problems.push(`more than ${max} ${name} parameters`);
  };
  tooMany('livingSubjectName', 10);
  tooMany('livingSubjectId', 20);
  tooMany('patientAddress', 10);
  const ids = values('livingSubjectId')
    .map(decodeIi)
    .filter((i): i is InstanceId => i !== undefined);
  const birthValue = values('livingSubjectBirthTime')[0];
  const birthTime = birthValue ? decodeTs(birthValue.attr('value')) : undefined;
  if (birthValue && !birthTime) problems.push('livingSubjectBirthTime is not an HL7 TS');
  const genderValue = values('livingSubjectAdministrativeGender')[0];
  const gender = genderValue ? decodeGender(genderValue.attr('code')) : undefined;
  if (genderValue && !gender) problems.push('livingSubjectAdministrativeGender is not M, F or UN');
  const names = values('livingSubjectName')
    .map(decodeName)
    .filter((n) => n.family.length || n.given.length);
  if (values('livingSubjectName').length && !names.length)
    problems.push('livingSubjectName has no name parts');
  const demographics: Demographics = {
    names,
    gender,
    birthTime,
    addresses: values('patientAddress').map(decodeAddress),
  };
  return {
    doc,
    element: el,
    queryByParameterXml: qbp ? relayElement(doc, qbp) : '',
    problems,
    messageId: messageId ?? { root: 'unknown' },
    sender: sender ?? { id: { root: 'unknown' } },
    receivers,
    senderAssigningAuthority: decodeIi(hl7Path(cap, 'authorOrPerformer', 'assignedDevice', 'id'))?.root,
    queryId: queryId ?? { root: 'unknown' },
    responsePriority: hl7Child(qbp, 'responsePriorityCode')?.attr('code') ?? 'I',
    ids,
    demographics,
    scopingOrganizations: values('otherIDsScopingOrganization')
      .map((v) => decodeIi(v)?.root)
      .filter((r): r is string => r !== undefined),
  };
}

/** The query id as audit records name it (`extension@root`, or the root alone). */
export function queryIdText(id: InstanceId): string {
  return id.extension ? `${id.extension}@${id.root}` : id.root;
}
