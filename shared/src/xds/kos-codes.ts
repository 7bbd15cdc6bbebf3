/**
 * XDS-I.b DocumentEntry codes of a KOS manifest, as the NIST XDS-I.b sample metadata has them (the
 * affinity domain may choose others; practiceSettingCode is left to whoever writes the entry):
 * formatCode = the KOS SOP Class in the DICOM UID registry, classCode IMAGES, typeCode LOINC 18748-4,
 * and one eventCodeList entry per modality (DICOM CID 29).
 */
import type { CodedValue } from './metadata';

export const KOS_CODES = {
  formatKos: {
    code: '1.2.840.10008.5.1.4.1.1.88.59',
    scheme: '1.2.840.10008.2.6.1',
    display: 'Key Object Selection Document',
  },
  classImages: { code: 'IMAGES', scheme: '1.3.6.1.4.1.19376.1.2.6.1', display: 'Images' },
  typeImagingStudy: { code: '18748-4', scheme: '2.16.840.1.113883.6.1', display: 'Diagnostic imaging study' },
  confidentialityNormal: { code: 'N', scheme: '2.16.840.1.113883.5.25', display: 'normal' },
  facilityHospital: { code: '22232009', scheme: '2.16.840.1.113883.6.96', display: 'Hospital' },
} satisfies Record<string, CodedValue>;

/** The coded fields of a KOS manifest's DocumentEntry, with the affinity domain's practice setting. */
export function kosEntryCodes(practiceSettingCode: CodedValue) {
  return {
    mimeType: 'application/dicom' as const,
    formatCode: KOS_CODES.formatKos,
    classCode: KOS_CODES.classImages,
    typeCode: KOS_CODES.typeImagingStudy,
    confidentialityCode: [KOS_CODES.confidentialityNormal],
    healthcareFacilityTypeCode: KOS_CODES.facilityHospital,
    practiceSettingCode,
  };
}

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
