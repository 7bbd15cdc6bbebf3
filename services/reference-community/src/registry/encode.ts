/**
 * ebRIM 3.0 encoding of XDS metadata (ITI TF-3 4.2.3, 4.2.5) for the reference registry's answers.
 */
import { createHash } from 'node:crypto';
import { attrs, escapeText, Scheme } from '@xcai/shared';
import type {
  CodedValue,
  XdsAssociation,
  XdsAuthor,
  XdsDocumentEntry,
  XdsSubmissionSet,
} from '../seed/types';

const ClassScheme = {
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

function slot(name: string, values: string[]): string {
  if (values.length === 0) return '';
  return `<rim:Slot${attrs({ name })}><rim:ValueList>${values.map((v) => `<rim:Value>${escapeText(v)}</rim:Value>`).join('')}</rim:ValueList></rim:Slot>`;
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

/** A DocumentEntry as a LeafClass rim:ExtrinsicObject (element order per rim.xsd). */
export function encodeDocumentEntry(d: XdsDocumentEntry): string {
  const id = d.entryUUID;
  return (
    `<rim:ExtrinsicObject${attrs({ id, lid: id, objectType: d.objectType, status: d.availabilityStatus, mimeType: d.mimeType })}>` +
    slot('creationTime', [d.creationTime]) +
    slot('hash', [d.hash]) +
    slot('languageCode', [d.languageCode]) +
    slot('repositoryUniqueId', [d.repositoryUniqueId]) +
    slot('serviceStartTime', [d.serviceStartTime]) +
    slot('serviceStopTime', d.serviceStopTime ? [d.serviceStopTime] : []) +
    slot('size', [String(d.size)]) +
    slot('sourcePatientId', [d.sourcePatientId]) +
    slot('sourcePatientInfo', d.sourcePatientInfo) +
    slot('urn:ihe:iti:xds:2013:referenceIdList', d.referenceIdList) +
    name(d.title, d.languageCode) +
    `<rim:VersionInfo versionName="1"/>` +
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
export function encodeSubmissionSet(s: XdsSubmissionSet): string[] {
  const id = s.entryUUID;
  const pkg =
    `<rim:RegistryPackage${attrs({ id, lid: id, objectType: OT.registryPackage, status: s.availabilityStatus })}>` +
    slot('submissionTime', [s.submissionTime]) +
    name(s.title) +
    `<rim:VersionInfo versionName="1"/>` +
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

export function encodeAssociation(a: XdsAssociation): string {
  return (
    `<rim:Association${attrs({ id: a.entryUUID, objectType: OT.association, associationType: a.associationType, sourceObject: a.sourceObject, targetObject: a.targetObject })}>` +
    (a.submissionSetStatus ? slot('SubmissionSetStatus', [a.submissionSetStatus]) : '') +
    `</rim:Association>`
  );
}

export function encodeObjectRef(id: string): string {
  return `<rim:ObjectRef${attrs({ id })}/>`;
}
