/**
 * Values in the XDS metadata of the seed's KOS manifests: codes (from the NIST XDS-I.b sample metadata and
 * SPEC-NOTES §9), status, association and reference-id types. The ebRIM scheme UUIDs to render them are the
 * registry's business (shared `Scheme`/`ObjectType`, registry/encode.ts).
 */
import { APPROVED_STATUS } from '@xcai/shared';
import type { CodedValue } from './types';

export const AVAILABILITY = {
  approved: APPROVED_STATUS,
  deprecated: 'urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated',
} as const;

export const ASSOCIATION = {
  hasMember: 'urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember',
  replace: 'urn:ihe:iti:2007:AssociationType:RPLC',
} as const;

export const REFERENCE_ID_TYPE = {
  studyInstanceUid: 'urn:ihe:iti:xds:2016:studyInstanceUID',
  accession: 'urn:ihe:iti:xds:2013:accession',
} as const;

export const CODES = {
  formatKos: {
    code: '1.2.840.10008.5.1.4.1.1.88.59',
    scheme: '1.2.840.10008.2.6.1',
    display: 'Key Object Selection Document',
  },
  classImages: { code: 'IMAGES', scheme: '1.3.6.1.4.1.19376.1.2.6.1', display: 'Images' },
  typeImagingStudy: { code: '18748-4', scheme: '2.16.840.1.113883.6.1', display: 'Diagnostic imaging study' },
  confidentialityNormal: { code: 'N', scheme: '2.16.840.1.113883.5.25', display: 'normal' },
  facilityHospital: { code: '22232009', scheme: '2.16.840.1.113883.6.96', display: 'Hospital' },
  practiceRadiology: { code: 'Practice-A', scheme: '1.3.6.1.4.1.21367.2017.3', display: 'Radiology' },
} satisfies Record<string, CodedValue>;

const MODALITY_NAMES: Record<string, string> = {
  CT: 'Computed Tomography',
  MR: 'Magnetic Resonance',
  CR: 'Computed Radiography',
  DX: 'Digital Radiography',
  US: 'Ultrasound',
  MG: 'Mammography',
  NM: 'Nuclear Medicine',
  PT: 'Positron emission tomography',
  XA: 'X-Ray Angiography',
  OT: 'Other',
};

/** eventCodeList entry for a DICOM modality (CID 29, scheme 1.2.840.10008.2.16.4). */
export function modalityCode(modality: string): CodedValue {
  return { code: modality, scheme: '1.2.840.10008.2.16.4', display: MODALITY_NAMES[modality] ?? modality };
}
