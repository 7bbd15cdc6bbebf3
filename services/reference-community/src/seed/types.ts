/**
 * Types of the reference-community seed generator: what to generate (SeedSpec) and what was generated
 * (SeedManifest, written to `<outDir>/manifest.json`).
 */

import type { AssociationMetadata, CodedValue, XdsAuthor } from '@xcai/shared';

/** DICOM Specific Character Set choices the generator writes. */
export type CharacterSet =
  /** Default repertoire (ASCII); (0008,0005) is left out. */
  | 'ISO_IR 6'
  /** `\ISO 2022 IR 87`: ASCII in G0, JIS X 0208 via ESC $ B … ESC ( B (PS3.5 Annex H). */
  | 'ISO 2022 IR 87'
  /**
   * `\ISO 2022 IR 87\ISO 2022 IR 159`: as IR 87, plus JIS X 0212 (supplementary kanji such as 鷗) via
   * ESC $ ( D.
   */
  | 'ISO 2022 IR 159'
  /** UTF-8. */
  | 'ISO_IR 192';

/** A DICOM PN value split into its component groups; each group is `family^given^middle^prefix^suffix`. */
export interface PersonNameSpec {
  alphabetic: string;
  ideographic?: string;
  phonetic?: string;
}

export interface StudySpec {
  /** StudyDescription (LO) and the base of the XDS title; may be Japanese for non-ASCII patients. */
  description: string;
  /** DICOM modality: CT and MR give CT/MR Image Storage, CR gives CR Image Storage, others Secondary Capture. */
  modality: string;
  /** Study date YYYYMMDD, local time of the community (see SeedSpec.utcOffset). */
  date: string;
  /** Study time hhmmss, local; default 090000. */
  time?: string;
  /** AccessionNumber (SH, ≤ 16 chars); default derived from community label and indexes. */
  accessionNumber?: string;
  /** Number of series. */
  series: number;
  /** Instances per series: one count for all series, or one count per series. */
  instancesPerSeries: number | number[];
  /** Target size of each instance file in bytes (the image matrix is chosen to come as close as possible). */
  instanceSize: number;
  /**
   * Transfer syntaxes, cycled per series (series k uses entry k mod n): 1.2.840.10008.1.2.1 (Explicit VR
   * LE), 1.2.840.10008.1.2 (Implicit VR LE), and the lossless compressed 1.2.840.10008.1.2.4.70 (JPEG
   * Lossless SV1) and 1.2.840.10008.1.2.4.80 (JPEG-LS Lossless), encoded by the generator itself (no
   * lossy syntax exists here). Default: Explicit VR LE.
   */
  transferSyntaxes?: string[];
  /**
   * Also generate an older, Deprecated KOS manifest for this study (referencing the first series only)
   * that the current manifest replaces (RPLC association).
   */
  replacesEarlierManifest?: boolean;
}

export interface PatientSpec {
  /** Affinity-domain patient id in HL7 CX form `ID^^^&OID&ISO`; used in DICOM and XDS patientId. */
  id: string;
  /** The community's local id (CX) for XDS sourcePatientId / PID-3; default: `id`. */
  localId?: string;
  name: PersonNameSpec;
  /** Default 'ISO_IR 6' (ASCII only). */
  characterSet?: CharacterSet;
  /** YYYYMMDD */
  birthDate: string;
  sex: 'M' | 'F' | 'O';
  /** Where the patient lives (the reference MPI's demographics; not written into DICOM or XDS). */
  address?: PatientAddress;
  studies: StudySpec[];
  /**
   * The patient's Privacy Policy Acknowledgement documents (BPPC) in this community (seed/consent.ts).
   * They belong to the patient, not to a position in the list, so they follow the patient whatever id
   * the community gives them.
   */
  consents?: ConsentSpec[];
}

export interface PatientAddress {
  streetAddressLine: string[];
  city: string;
  state: string;
  postalCode: string;
  country: string;
}

export interface SeedSpec {
  /** Short label of the community, e.g. 'A' (used in accession numbers and titles). */
  community: string;
  /** `urn:oid:…` */
  homeCommunityId: string;
  /** OID root under which every DICOM and XDS uniqueId of this community is made (UIDs stay ≤ 64 chars). */
  uidRoot: string;
  /** XDS repository holding the KOS manifests (ITI-43). */
  repositoryUniqueId: string;
  /** Imaging Document Source (RAD-69) = RetrieveLocationUID in the KOS. */
  idsRepositoryUniqueId: string;
  /** XDS SubmissionSet.sourceId; default `${uidRoot}.9`. */
  sourceId?: string;
  /** Institution in DICOM InstitutionName and XDS authorInstitution; default `Community ${community} Hospital`, OID `${uidRoot}.8`. */
  institution?: { name: string; oid: string };
  /** XDS authorPerson (XCN); default `^Suzuki^Ichiro^^^`. */
  authorPerson?: string;
  /** Local time zone of the community's DICOM dates/times, ±hhmm; XDS times are UTC. Default '+0900'. */
  utcOffset?: string;
  patients: PatientSpec[];
}

export type { CodedValue, XdsAuthor };

/** One acknowledgement of privacy policies by the patient (ITI TF-1 §19). */
export interface ConsentSpec {
  /** Policy OIDs acknowledged (the document's eventCodeList). */
  policies: string[];
  /** Effective from this local date (YYYYMMDD) … */
  date: string;
  /** … until this one (exclusive), if it ends. */
  until?: string;
}

/** The registry objects of the consent documents (kept apart from the KOS manifests). */
export interface ConsentManifest {
  documentEntries: XdsDocumentEntry[];
  submissionSets: XdsSubmissionSet[];
  associations: XdsAssociation[];
}

export interface XdsDocumentEntry {
  entryUUID: string;
  uniqueId: string;
  homeCommunityId: string;
  /** Stable DocumentEntry */
  objectType: string;
  patientId: string;
  sourcePatientId: string;
  /** `PID-3|…`, `PID-5|…` (UTF-8, alphabetic~ideographic~phonetic), `PID-7|…`, `PID-8|…` */
  sourcePatientInfo: string[];
  /** application/dicom (KOS manifests), text/xml (consent documents). */
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
  serviceStartTime: string;
  serviceStopTime?: string;
  languageCode: string;
  title: string;
  hash: string;
  size: number;
  repositoryUniqueId: string;
  availabilityStatus: string;
  author: XdsAuthor[];
  /** `urn:ihe:iti:xds:2013:referenceIdList`: Study Instance UID and accession number (CXi). */
  referenceIdList: string[];
  /** Where the document bytes are, relative to outDir (not XDS metadata). */
  path: string;
}

export interface XdsSubmissionSet {
  entryUUID: string;
  uniqueId: string;
  sourceId: string;
  homeCommunityId: string;
  patientId: string;
  submissionTime: string;
  contentTypeCode: CodedValue;
  title: string;
  author: XdsAuthor[];
  availabilityStatus: string;
}

/** HasMember (submission set → document entry) or RPLC (new document entry → replaced one). */
export type XdsAssociation = AssociationMetadata;

export interface ManifestInstance {
  sopInstanceUid: string;
  sopClassUid: string;
  transferSyntaxUid: string;
  /** relative to outDir, '/' separated */
  path: string;
  size: number;
  sha1: string;
}

export interface ManifestSeries {
  seriesInstanceUid: string;
  seriesNumber: number;
  modality: string;
  transferSyntaxUid: string;
  instances: ManifestInstance[];
}

export interface ManifestKos {
  path: string;
  documentUniqueId: string;
  entryUUID: string;
  size: number;
  sha1: string;
  availabilityStatus: string;
}

export interface ManifestStudy {
  studyInstanceUid: string;
  accessionNumber: string;
  description: string;
  modality: string;
  date: string;
  /** The current (Approved) KOS manifest. */
  kos: ManifestKos;
  /** Older manifests this study's KOS replaced (Deprecated). */
  deprecatedKos: ManifestKos[];
  series: ManifestSeries[];
}

export interface ManifestPatient {
  /** CX, affinity domain */
  id: string;
  sourcePatientId: string;
  /** Readable name: ideographic group if any, else alphabetic, '^' → ' ' */
  displayName: string;
  /** The PN value as Unicode (`alpha=ideo=phon`) */
  dicomName: string;
  characterSet: CharacterSet;
  birthDate: string;
  sex: string;
  address?: PatientAddress;
  studies: ManifestStudy[];
}

export interface SeedManifest {
  generator: { name: string; version: number };
  spec: {
    community: string;
    uidRoot: string;
    patients: number;
    studies: number;
    series: number;
    instances: number;
    instanceBytes: number;
    kosDocuments: number;
  };
  homeCommunityId: string;
  repositoryUniqueId: string;
  idsRepositoryUniqueId: string;
  patients: ManifestPatient[];
  documentEntries: XdsDocumentEntry[];
  submissionSets: XdsSubmissionSet[];
  associations: XdsAssociation[];
  /** Consent documents, when the spec names some (registered and stored like the manifests). */
  consents?: ConsentManifest;
}
