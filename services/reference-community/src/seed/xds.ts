/**
 * Values in the XDS metadata of the seed's KOS manifests: codes (from the NIST XDS-I.b sample metadata and
 * SPEC-NOTES §9), status, association and reference-id types. The ebRIM scheme UUIDs to render them are the
 * registry's business (shared `Scheme`/`ObjectType`, registry/encode.ts).
 */
import { APPROVED_STATUS, KOS_CODES, modalityCode } from '@xcai/shared';
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
  ...KOS_CODES,
  practiceRadiology: { code: 'Practice-A', scheme: '1.3.6.1.4.1.21367.2017.3', display: 'Radiology' },
} satisfies Record<string, CodedValue>;

export { modalityCode };
