import { NS } from '../xml/ns';
import type { XmlElement } from '../xml/parse';

/** Classification and identification schemes of XDS metadata (ITI TF-3 4.2.5). */
export const Scheme = {
  documentEntryUniqueId: 'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab',
  documentEntryPatientId: 'urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427',
  submissionSetUniqueId: 'urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8',
  submissionSetPatientId: 'urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446',
  submissionSetSourceId: 'urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832',
  folderPatientId: 'urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a',
} as const;

/** Classification schemes of coded DocumentEntry attributes (ITI TF-3 4.2.5.1). */
export const ClassificationScheme = {
  classCode: 'urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a',
  typeCode: 'urn:uuid:f0306f51-975f-434e-a61c-c59651d33983',
  confidentialityCode: 'urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f',
  eventCodeList: 'urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4',
  formatCode: 'urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d',
} as const;

/** A coded value of the metadata: nodeRepresentation and the codingScheme slot. */
export interface MetadataCode {
  code: string;
  scheme?: string;
}

/** The codes of an object's rim:Classifications with the given scheme. */
export function classificationCodes(obj: XmlElement, scheme: string): MetadataCode[] {
  const out: MetadataCode[] = [];
  for (const c of obj.childrenNamed(NS.rim, 'Classification')) {
    if (c.attr('classificationScheme') !== scheme) continue;
    const code = c.attr('nodeRepresentation')?.trim();
    if (!code) continue;
    const codingScheme = slotValues(c, 'codingScheme')[0];
    out.push(codingScheme ? { code, scheme: codingScheme } : { code });
  }
  return out;
}

export const ObjectType = {
  stableDocumentEntry: 'urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1',
  onDemandDocumentEntry: 'urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248',
} as const;

/** Values of a rim:Slot by name. */
export function slotValues(obj: XmlElement, name: string): string[] {
  for (const s of obj.childrenNamed(NS.rim, 'Slot')) {
    if (s.attr('name') === name) {
      return (s.child(NS.rim, 'ValueList')?.childrenNamed(NS.rim, 'Value') ?? []).map((v) => v.trimmedText());
    }
  }
  return [];
}

/** Value of the rim:ExternalIdentifier with the given scheme. */
export function externalIdentifier(obj: XmlElement, scheme: string): string | undefined {
  for (const e of obj.childrenNamed(NS.rim, 'ExternalIdentifier')) {
    if (e.attr('identificationScheme') === scheme) return e.attr('value')?.trim();
  }
  return undefined;
}

export interface DocumentEntryFacts {
  entryUuid?: string;
  uniqueId?: string;
  repositoryUniqueId?: string;
  /** SHA-1, lower-case hex. */
  hash?: string;
  size?: number;
  patientId?: string;
  mimeType?: string;
  home?: string;
}

/** What a gateway needs from a DocumentEntry (ExtrinsicObject) to route and verify a retrieve. */
export function documentEntryFacts(obj: XmlElement): DocumentEntryFacts | undefined {
  if (!obj.is(NS.rim, 'ExtrinsicObject')) return undefined;
  const size = slotValues(obj, 'size')[0];
  const hash = slotValues(obj, 'hash')[0];
  return {
    entryUuid: obj.attr('id'),
    uniqueId: externalIdentifier(obj, Scheme.documentEntryUniqueId),
    repositoryUniqueId: slotValues(obj, 'repositoryUniqueId')[0],
    hash: hash && /^[0-9a-fA-F]{40}$/.test(hash) ? hash.toLowerCase() : undefined,
    size: size && /^\d{1,15}$/.test(size) ? Number(size) : undefined,
    patientId: externalIdentifier(obj, Scheme.documentEntryPatientId),
    mimeType: obj.attr('mimeType'),
    home: obj.attr('home'),
  };
}
