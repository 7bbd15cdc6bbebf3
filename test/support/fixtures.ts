import { join, resolve } from 'node:path';

/**
 * The public third-party material the tests read (schemas, sample messages), kept in the repository
 * under test/fixtures/ihe with each file's origin and licence in its SOURCES.md. Test data only: no
 * product code reads it. Every test names these files through this module.
 */
export const FIXTURES = resolve(__dirname, '../fixtures/ihe');
export const SAMPLES = join(FIXTURES, 'samples');
export const SCHEMAS = join(FIXTURES, 'schema');
/** Validates a whole SOAP 1.2 envelope or any XCA / XCA-I / XDS body element. */
export const SCHEMA = join(SCHEMAS, 'ihe-all.xsd');
/** A SOAP 1.2 envelope (or bare message) with an HL7 V3 PRPA_IN201305UV02 / PRPA_IN201306UV02 body. */
export const HL7V3_SCHEMA = join(SCHEMAS, 'hl7v3-all.xsd');
/** DICOM PS3.15 A.5.1 audit message. */
export const AUDIT_SCHEMA = join(SCHEMAS, 'dicom-audit/dicom2017c.xsd');

/** A sample message, by its path under samples/ (e.g. `iti-38/nist-iti38-response.soap.xml`). */
export function sample(path: string): string {
  return join(SAMPLES, path);
}
