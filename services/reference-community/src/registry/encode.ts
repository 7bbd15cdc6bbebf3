/**
 * ebRIM 3.0 encoding of XDS metadata (ITI TF-3 4.2.3, 4.2.5) for the reference registry's answers:
 * the shared encoders (shared/src/xds/metadata.ts), which the submitters use too.
 */
export { encodeAssociation, encodeDocumentEntry, encodeObjectRef, encodeSubmissionSet } from '@xcai/shared';
