import { NS } from '../xml/ns';
import type { XmlElement } from '../xml/parse';

/** Classification and identification schemes of XDS metadata (ITI TF-3 4.2.5). */
export const Scheme = {
  documentEntryUniqueId: 'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab',
  documentEntryPatientId: 'urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427',
  submissionSetUniqueId: 'urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8',
  submissionSetPatientId: 'urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446',
  submissionSetSourceId: 'urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832',
} as const;

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
