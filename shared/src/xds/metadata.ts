/**
 * XDS metadata in ebRIM 3.0 (ITI TF-3 4.2.3, 4.2.5): DocumentEntries, SubmissionSets and
 * Associations, encoded for registry answers (ITI-18) and submissions (ITI-41 / RAD-68 / ITI-42),
 * and decoded from a SubmitObjectsRequest.
 */
import { createHash } from 'node:crypto';
import { SoapFault } from '../soap/fault';
import { NS } from '../xml/ns';
import type { XmlElement } from '../xml/parse';
import { attrs, escapeText } from '../xml/write';
import { externalIdentifier, Scheme, slotValues } from '../ebrim/registry-object';
import {
  decodeRegistryErrors,
  encodeRegistryErrorList,
  STATUS_URN,
  statusFromUrn,
  type RegistryError,
  type Status,
} from '../ebrim/status';
import type { AuditParticipant, HumanRequestor, TransactionAuditEvent } from '../audit/event';

export interface CodedValue {
  code: string;
  scheme: string;
  display: string;
}

export interface XdsAuthor {
  /** XON values */
  authorInstitution: string[];
  /** XCN */
  authorPerson: string;
  authorRole: string[];
  authorSpecialty: string[];
}

export interface DocumentEntryMetadata {
  entryUUID: string;
  uniqueId: string;
  /** Stable DocumentEntry */
  objectType: string;
  patientId: string;
  sourcePatientId: string;
  /** `PID-3|…`, `PID-5|…`, `PID-7|…`, `PID-8|…` */
  sourcePatientInfo: string[];
  mimeType: string;
  formatCode: CodedValue;
  classCode: CodedValue;
  typeCode: CodedValue;
  confidentialityCode: CodedValue[];
  healthcareFacilityTypeCode: CodedValue;
  practiceSettingCode: CodedValue;
  eventCodeList: CodedValue[];
  /** YYYYMMDDhhmmss UTC */
  creationTime: string;
  serviceStartTime?: string;
  /** YYYYMMDDhhmmss UTC (e.g. when a consent stops applying) */
  serviceStopTime?: string;
  languageCode: string;
  title: string;
  /** Set by the repository (ITI-42), optional in ITI-41 (then checked). */
  hash?: string;
  size?: number;
  repositoryUniqueId?: string;
  /** Absent in a submission; the registry sets it. */
  availabilityStatus?: string;
  author: XdsAuthor[];
  /** `urn:ihe:iti:xds:2013:referenceIdList`: Study Instance UID and accession number (CXi). */
  referenceIdList: string[];
}

export interface SubmissionSetMetadata {
  entryUUID: string;
  uniqueId: string;
  sourceId: string;
  patientId: string;
  submissionTime: string;
  contentTypeCode: CodedValue;
  title: string;
  author: XdsAuthor[];
  availabilityStatus?: string;
}

export interface AssociationMetadata {
  entryUUID: string;
  /** HasMember (submission set → document entry) or RPLC (new document entry → replaced one). */
  associationType: string;
  sourceObject: string;
  targetObject: string;
  /** 'Original' on HasMember associations */
  submissionSetStatus?: string;
}

export const AssociationType = {
  hasMember: 'urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember',
  rplc: 'urn:ihe:iti:2007:AssociationType:RPLC',
} as const;

export const ClassScheme = {
  docAuthor: 'urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d',
  classCode: 'urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a',
  confidentialityCode: 'urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f',
  eventCodeList: 'urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4',
  formatCode: 'urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d',
  healthcareFacilityTypeCode: 'urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1',
  practiceSettingCode: 'urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead',
  typeCode: 'urn:uuid:f0306f51-975f-434e-a61c-c59651d33983',
  ssAuthor: 'urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d',
  contentTypeCode: 'urn:uuid:aa543740-bdda-424e-8c96-df4873be8500',
  submissionSetNode: 'urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd',
} as const;

const OT = {
  classification: 'urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification',
  externalIdentifier: 'urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier',
  registryPackage: 'urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage',
  association: 'urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association',
};

/** A stable id for a sub-object (classification, external identifier) of `owner`. */
function subId(owner: string, name: string): string {
  const h = createHash('sha1').update(`${owner}|${name}`).digest('hex');
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function slot(name: string, values: (string | undefined)[]): string {
  const v = values.filter((x): x is string => x !== undefined && x !== '');
  if (v.length === 0) return '';
  return `<rim:Slot${attrs({ name })}><rim:ValueList>${v.map((x) => `<rim:Value>${escapeText(x)}</rim:Value>`).join('')}</rim:ValueList></rim:Slot>`;
}

function name(value: string, lang?: string): string {
  return `<rim:Name><rim:LocalizedString${attrs({ 'xml:lang': lang, charset: 'UTF-8', value })}/></rim:Name>`;
}

function coded(owner: string, scheme: string, c: CodedValue, n = 0): string {
  return (
    `<rim:Classification${attrs({ id: subId(owner, `${scheme}#${n}`), objectType: OT.classification, classificationScheme: scheme, classifiedObject: owner, nodeRepresentation: c.code })}>` +
    slot('codingScheme', [c.scheme]) +
    name(c.display) +
    `</rim:Classification>`
  );
}

function author(owner: string, scheme: string, a: XdsAuthor, n: number): string {
  return (
    `<rim:Classification${attrs({ id: subId(owner, `${scheme}#${n}`), objectType: OT.classification, classificationScheme: scheme, classifiedObject: owner, nodeRepresentation: '' })}>` +
    slot('authorPerson', [a.authorPerson]) +
    slot('authorInstitution', a.authorInstitution) +
    slot('authorRole', a.authorRole) +
    slot('authorSpecialty', a.authorSpecialty) +
    `</rim:Classification>`
  );
}

function externalId(owner: string, scheme: string, value: string, label: string): string {
  return (
    `<rim:ExternalIdentifier${attrs({ id: subId(owner, scheme), objectType: OT.externalIdentifier, registryObject: owner, identificationScheme: scheme, value })}>` +
    name(label) +
    `</rim:ExternalIdentifier>`
  );
}

/** A DocumentEntry as a rim:ExtrinsicObject (element order per rim.xsd). */
export function encodeDocumentEntry(d: DocumentEntryMetadata): string {
  const id = d.entryUUID;
  return (
    `<rim:ExtrinsicObject${attrs({ id, lid: id, objectType: d.objectType, status: d.availabilityStatus, mimeType: d.mimeType })}>` +
    slot('creationTime', [d.creationTime]) +
    slot('hash', [d.hash]) +
    slot('languageCode', [d.languageCode]) +
    slot('repositoryUniqueId', [d.repositoryUniqueId]) +
    slot('serviceStartTime', [d.serviceStartTime]) +
    slot('serviceStopTime', d.serviceStopTime ? [d.serviceStopTime] : []) +
    slot('size', [d.size === undefined ? undefined : String(d.size)]) +
    slot('sourcePatientId', [d.sourcePatientId]) +
    slot('sourcePatientInfo', d.sourcePatientInfo) +
    slot('urn:ihe:iti:xds:2013:referenceIdList', d.referenceIdList) +
    name(d.title, d.languageCode) +
    (d.availabilityStatus ? `<rim:VersionInfo versionName="1"/>` : '') +
    d.author.map((a, i) => author(id, ClassScheme.docAuthor, a, i)).join('') +
    coded(id, ClassScheme.classCode, d.classCode) +
    d.confidentialityCode.map((c, i) => coded(id, ClassScheme.confidentialityCode, c, i)).join('') +
    d.eventCodeList.map((c, i) => coded(id, ClassScheme.eventCodeList, c, i)).join('') +
    coded(id, ClassScheme.formatCode, d.formatCode) +
    coded(id, ClassScheme.healthcareFacilityTypeCode, d.healthcareFacilityTypeCode) +
    coded(id, ClassScheme.practiceSettingCode, d.practiceSettingCode) +
    coded(id, ClassScheme.typeCode, d.typeCode) +
    externalId(id, Scheme.documentEntryPatientId, d.patientId, 'XDSDocumentEntry.patientId') +
    externalId(id, Scheme.documentEntryUniqueId, d.uniqueId, 'XDSDocumentEntry.uniqueId') +
    `</rim:ExtrinsicObject>`
  );
}

/** A SubmissionSet as rim:RegistryPackage plus the Classification that marks it as one. */
export function encodeSubmissionSet(s: SubmissionSetMetadata): string[] {
  const id = s.entryUUID;
  const pkg =
    `<rim:RegistryPackage${attrs({ id, lid: id, objectType: OT.registryPackage, status: s.availabilityStatus })}>` +
    slot('submissionTime', [s.submissionTime]) +
    name(s.title) +
    (s.availabilityStatus ? `<rim:VersionInfo versionName="1"/>` : '') +
    s.author.map((a, i) => author(id, ClassScheme.ssAuthor, a, i)).join('') +
    coded(id, ClassScheme.contentTypeCode, s.contentTypeCode) +
    externalId(id, Scheme.submissionSetUniqueId, s.uniqueId, 'XDSSubmissionSet.uniqueId') +
    externalId(id, Scheme.submissionSetSourceId, s.sourceId, 'XDSSubmissionSet.sourceId') +
    externalId(id, Scheme.submissionSetPatientId, s.patientId, 'XDSSubmissionSet.patientId') +
    `</rim:RegistryPackage>`;
  const mark = `<rim:Classification${attrs({
    id: subId(id, 'SubmissionSet'),
    objectType: OT.classification,
    classifiedObject: id,
    classificationNode: ClassScheme.submissionSetNode,
  })}/>`;
  return [pkg, mark];
}

export function encodeAssociation(a: AssociationMetadata): string {
  return (
    `<rim:Association${attrs({ id: a.entryUUID, objectType: OT.association, associationType: a.associationType, sourceObject: a.sourceObject, targetObject: a.targetObject })}>` +
    (a.submissionSetStatus ? slot('SubmissionSetStatus', [a.submissionSetStatus]) : '') +
    `</rim:Association>`
  );
}

export function encodeObjectRef(id: string): string {
  return `<rim:ObjectRef${attrs({ id })}/>`;
}

/** What one SubmitObjectsRequest registers. */
export interface Submission {
  submissionSet: SubmissionSetMetadata;
  documents: DocumentEntryMetadata[];
  associations: AssociationMetadata[];
}

function submitObjectsRequest(s: Submission): string {
  return (
    `<lcm:SubmitObjectsRequest xmlns:lcm="${NS.lcm}"><rim:RegistryObjectList xmlns:rim="${NS.rim}">` +
    s.documents.map(encodeDocumentEntry).join('') +
    encodeSubmissionSet(s.submissionSet).join('') +
    s.associations.map(encodeAssociation).join('') +
    `</rim:RegistryObjectList></lcm:SubmitObjectsRequest>`
  );
}

/** ITI-42 Register Document Set-b request body. */
export function encodeRegisterDocumentSetRequest(s: Submission): string {
  return submitObjectsRequest(s);
}

/**
 * ITI-41 / RAD-68 Provide and Register (Imaging) Document Set-b request body: the metadata plus one
 * xdsb:Document per DocumentEntry, each an xop:Include of the part `contentIds[entryUUID]`.
 */
export function encodeProvideAndRegisterRequest(s: Submission, contentIds: Record<string, string>): string {
  return (
    `<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="${NS.xdsb}">` +
    submitObjectsRequest(s) +
    s.documents
      .map(
        (d) =>
          `<xdsb:Document${attrs({ id: d.entryUUID })}><xop:Include xmlns:xop="${NS.xop}"${attrs({ href: `cid:${contentIds[d.entryUUID]}` })}/></xdsb:Document>`,
      )
      .join('') +
    `</xdsb:ProvideAndRegisterDocumentSetRequest>`
  );
}

function codedValues(obj: XmlElement, scheme: string): CodedValue[] {
  return obj
    .childrenNamed(NS.rim, 'Classification')
    .filter((c) => c.attr('classificationScheme') === scheme)
    .map((c) => ({
      code: c.attr('nodeRepresentation') ?? '',
      scheme: slotValues(c, 'codingScheme')[0] ?? '',
      display: c.child(NS.rim, 'Name')?.child(NS.rim, 'LocalizedString')?.attr('value') ?? '',
    }));
}

function authors(obj: XmlElement, scheme: string): XdsAuthor[] {
  return obj
    .childrenNamed(NS.rim, 'Classification')
    .filter((c) => c.attr('classificationScheme') === scheme)
    .map((c) => ({
      authorPerson: slotValues(c, 'authorPerson')[0] ?? '',
      authorInstitution: slotValues(c, 'authorInstitution'),
      authorRole: slotValues(c, 'authorRole'),
      authorSpecialty: slotValues(c, 'authorSpecialty'),
    }));
}

function title(obj: XmlElement): string {
  return obj.child(NS.rim, 'Name')?.child(NS.rim, 'LocalizedString')?.attr('value') ?? '';
}

/** Problems found while decoding a submission (each becomes an XDSRegistryMetadataError). */
export class SubmissionError extends Error {}

/**
 * The objects of an lcm:SubmitObjectsRequest. Throws SubmissionError on what cannot be registered
 * (a missing required attribute, no or several SubmissionSets, an unknown object).
 */
export function decodeSubmitObjectsRequest(el: XmlElement): Submission {
  if (!el.is(NS.lcm, 'SubmitObjectsRequest'))
    throw SoapFault.sender(`expected lcm:SubmitObjectsRequest, found {${el.ns}}${el.local}`);
  const list = el.child(NS.rim, 'RegistryObjectList');
  if (!list) throw new SubmissionError('SubmitObjectsRequest without rim:RegistryObjectList');
  const need = (v: string | undefined, what: string): string => {
    if (!v) throw new SubmissionError(`${what} is missing`);
    return v;
  };
  const one = (cs: CodedValue[], what: string): CodedValue => {
    if (cs.length !== 1) throw new SubmissionError(`${what}: expected one code, found ${cs.length}`);
    return cs[0];
  };
  const documents: DocumentEntryMetadata[] = [];
  const packages: XmlElement[] = [];
  const marked = new Set<string>();
  const associations: AssociationMetadata[] = [];
  for (const o of list.children) {
    if (o.is(NS.rim, 'ExtrinsicObject')) {
      const id = need(o.attr('id'), 'ExtrinsicObject id');
      const size = slotValues(o, 'size')[0];
      documents.push({
        entryUUID: id,
        uniqueId: need(externalIdentifier(o, Scheme.documentEntryUniqueId), `uniqueId of ${id}`),
        objectType: o.attr('objectType') ?? '',
        patientId: need(externalIdentifier(o, Scheme.documentEntryPatientId), `patientId of ${id}`),
        sourcePatientId: slotValues(o, 'sourcePatientId')[0] ?? '',
        sourcePatientInfo: slotValues(o, 'sourcePatientInfo'),
        mimeType: need(o.attr('mimeType'), `mimeType of ${id}`),
        formatCode: one(codedValues(o, ClassScheme.formatCode), `formatCode of ${id}`),
        classCode: one(codedValues(o, ClassScheme.classCode), `classCode of ${id}`),
        typeCode: one(codedValues(o, ClassScheme.typeCode), `typeCode of ${id}`),
        confidentialityCode: codedValues(o, ClassScheme.confidentialityCode),
        healthcareFacilityTypeCode: one(
          codedValues(o, ClassScheme.healthcareFacilityTypeCode),
          `healthcareFacilityTypeCode of ${id}`,
        ),
        practiceSettingCode: one(
          codedValues(o, ClassScheme.practiceSettingCode),
          `practiceSettingCode of ${id}`,
        ),
        eventCodeList: codedValues(o, ClassScheme.eventCodeList),
        creationTime: need(slotValues(o, 'creationTime')[0], `creationTime of ${id}`),
        serviceStartTime: slotValues(o, 'serviceStartTime')[0],
        serviceStopTime: slotValues(o, 'serviceStopTime')[0],
        languageCode: need(slotValues(o, 'languageCode')[0], `languageCode of ${id}`),
        title: title(o),
        hash: slotValues(o, 'hash')[0]?.toLowerCase(),
        size: size === undefined ? undefined : Number(size),
        repositoryUniqueId: slotValues(o, 'repositoryUniqueId')[0],
        author: authors(o, ClassScheme.docAuthor),
        referenceIdList: slotValues(o, 'urn:ihe:iti:xds:2013:referenceIdList'),
      });
    } else if (o.is(NS.rim, 'RegistryPackage')) {
      packages.push(o);
    } else if (o.is(NS.rim, 'Classification')) {
      if (o.attr('classificationNode') === ClassScheme.submissionSetNode)
        marked.add(o.attr('classifiedObject') ?? '');
    } else if (o.is(NS.rim, 'Association')) {
      associations.push({
        entryUUID: need(o.attr('id'), 'Association id'),
        associationType: need(o.attr('associationType'), 'associationType'),
        sourceObject: need(o.attr('sourceObject'), 'Association sourceObject'),
        targetObject: need(o.attr('targetObject'), 'Association targetObject'),
        submissionSetStatus: slotValues(o, 'SubmissionSetStatus')[0],
      });
    } else {
      throw new SubmissionError(`${o.local} objects are not accepted by this registry`);
    }
  }
  const sets = packages.filter(
    (p) =>
      marked.has(p.attr('id') ?? '') ||
      p
        .childrenNamed(NS.rim, 'Classification')
        .some((c) => c.attr('classificationNode') === ClassScheme.submissionSetNode),
  );
  if (sets.length !== 1) throw new SubmissionError(`expected one SubmissionSet, found ${sets.length}`);
  if (packages.length > 1) throw new SubmissionError('Folders are not accepted by this registry');
  const p = sets[0];
  const sid = need(p.attr('id'), 'SubmissionSet id');
  return {
    submissionSet: {
      entryUUID: sid,
      uniqueId: need(externalIdentifier(p, Scheme.submissionSetUniqueId), 'SubmissionSet uniqueId'),
      sourceId: need(externalIdentifier(p, Scheme.submissionSetSourceId), 'SubmissionSet sourceId'),
      patientId: need(externalIdentifier(p, Scheme.submissionSetPatientId), 'SubmissionSet patientId'),
      submissionTime: need(slotValues(p, 'submissionTime')[0], 'submissionTime'),
      contentTypeCode: one(codedValues(p, ClassScheme.contentTypeCode), 'contentTypeCode'),
      title: title(p),
      author: authors(p, ClassScheme.ssAuthor),
    },
    documents,
    associations,
  };
}

/** The xdsb:Document references of a ProvideAndRegisterDocumentSetRequest: entryUUID → cid href or inline. */
export function decodeProvideAndRegisterRequest(el: XmlElement): {
  submission: Submission;
  documents: Map<string, { kind: 'xop'; href: string } | { kind: 'inline'; base64: string }>;
} {
  if (!el.is(NS.xdsb, 'ProvideAndRegisterDocumentSetRequest'))
    throw SoapFault.sender(`expected xdsb:ProvideAndRegisterDocumentSetRequest, found {${el.ns}}${el.local}`);
  const sor = el.child(NS.lcm, 'SubmitObjectsRequest');
  if (!sor) throw SoapFault.sender('ProvideAndRegisterDocumentSetRequest without lcm:SubmitObjectsRequest');
  const documents = new Map<string, { kind: 'xop'; href: string } | { kind: 'inline'; base64: string }>();
  for (const d of el.childrenNamed(NS.xdsb, 'Document')) {
    const id = d.attr('id');
    if (!id) throw SoapFault.sender('xdsb:Document without id');
    const inc = d.child(NS.xop, 'Include');
    documents.set(
      id,
      inc ? { kind: 'xop', href: inc.attr('href') ?? '' } : { kind: 'inline', base64: d.text },
    );
  }
  return { submission: decodeSubmitObjectsRequest(sor), documents };
}

/** rs:RegistryResponse, the answer of ITI-41 / RAD-68 / ITI-42. */
export function encodeRegistryResponse(status: Status, errors: RegistryError[]): string {
  return `<rs:RegistryResponse xmlns:rs="${NS.rs}"${attrs({ status: STATUS_URN[status] })}>${encodeRegistryErrorList(errors)}</rs:RegistryResponse>`;
}

export function decodeRegistryResponse(el: XmlElement): { status: Status; errors: RegistryError[] } {
  if (!el.is(NS.rs, 'RegistryResponse'))
    throw new Error(`expected rs:RegistryResponse, found {${el.ns}}${el.local}`);
  const status = statusFromUrn(el.attr('status'));
  if (!status) throw new Error(`RegistryResponse has no valid status (${el.attr('status') ?? 'missing'})`);
  return { status, errors: decodeRegistryErrors(el) };
}

/** The audit record of a submission at either end (ITI TF-2 3.41.5.1, 3.42.5.1; RAD TF-3 4.68.4.1.4). */
export function submissionAuditEvent(o: {
  transaction: 'ITI-41' | 'RAD-68' | 'ITI-42';
  side: 'requester' | 'responder';
  submission: Submission | undefined;
  status: Status | undefined;
  errors: RegistryError[];
  participants: { requester: AuditParticipant; responder: AuditParticipant };
  humanRequestors?: HumanRequestor[];
  messageId?: string;
  delivered?: boolean;
}): TransactionAuditEvent {
  const outcome =
    o.delivered === false || !o.status
      ? 8
      : o.status === 'Success'
        ? 0
        : o.status === 'PartialSuccess'
          ? 4
          : 8;
  return {
    kind: 'transaction',
    transaction: o.transaction,
    side: o.side,
    eventDateTime: new Date(),
    ...o.participants,
    humanRequestors: o.humanRequestors ?? [],
    patientIds: o.submission ? [o.submission.submissionSet.patientId] : [],
    outcome,
    outcomeDescription: o.errors.length ? o.errors.map((e) => e.errorCode).join(' ') : undefined,
    groups: [],
    messageId: o.messageId,
    submissionSetUniqueId: o.submission?.submissionSet.uniqueId,
  };
}
