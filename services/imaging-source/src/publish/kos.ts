/**
 * The XDS-I.b imaging manifest of one archive study: a Key Object Selection Document (TID 2010,
 * title DCM 113030 "Manifest") listing every instance under Current Requested Procedure Evidence
 * Sequence with the bridge's RepositoryUniqueId as Retrieve Location UID (RAD TF-3 4.68.4.1.2.3),
 * written in UTF-8 (ISO_IR 192) from the archive's DICOM JSON, Explicit VR Little Endian.
 */
import { createHash } from 'node:crypto';
import dcmjs from 'dcmjs';
import { personName, str, strs, type DicomJson } from '../archive/client';

export const KOS_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.88.59';
const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
const IMPLEMENTATION_CLASS_UID = '2.25.246117432906208116227126540497451350519';

export interface StudyInstances {
  studyInstanceUid: string;
  /** One dataset per instance (WADO-RS study metadata), in any order. */
  instances: DicomJson[];
}

/** A UID under 2.25 derived from `seed` (the same study contents give the same manifest UIDs). */
export function derivedUid(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  return `2.25.${BigInt(`0x${h.subarray(0, 16).toString('hex')}`).toString()}`;
}

/** A urn:uuid derived from `seed` (name-based, RFC 4122 version 5 layout over SHA-1). */
export function derivedUuid(seed: string): string {
  const h = createHash('sha1').update(seed).digest('hex');
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}

export interface SeriesRefs {
  seriesInstanceUid: string;
  modality?: string;
  instances: { sopClassUid: string; sopInstanceUid: string }[];
}

/** The study's series and instances, sorted (the manifest's identity depends on them only). */
export function seriesOf(study: StudyInstances): SeriesRefs[] {
  const bySeries = new Map<string, SeriesRefs>();
  for (const i of study.instances) {
    const se = str(i, '0020000E');
    const sop = str(i, '00080018');
    const cls = str(i, '00080016');
    if (!se || !sop || !cls) continue;
    let s = bySeries.get(se);
    if (!s) bySeries.set(se, (s = { seriesInstanceUid: se, modality: str(i, '00080060'), instances: [] }));
    s.instances.push({ sopClassUid: cls, sopInstanceUid: sop });
  }
  const list = [...bySeries.values()].sort((a, b) => a.seriesInstanceUid.localeCompare(b.seriesInstanceUid));
  for (const s of list) s.instances.sort((a, b) => a.sopInstanceUid.localeCompare(b.sopInstanceUid));
  return list;
}

export interface Manifest {
  sopInstanceUid: string;
  seriesInstanceUid: string;
  bytes: Buffer;
  series: SeriesRefs[];
  instanceCount: number;
}

function code(value: string, scheme: string, meaning: string) {
  return { CodeValue: value, CodingSchemeDesignator: scheme, CodeMeaning: meaning };
}

/** Builds the manifest; `retrieveLocationUid` is the bridge's RepositoryUniqueId. */
export function buildManifest(
  study: StudyInstances,
  retrieveLocationUid: string,
  now = new Date(),
): Manifest {
  const series = seriesOf(study);
  const count = series.reduce((n, s) => n + s.instances.length, 0);
  if (count === 0) throw new Error(`study ${study.studyInstanceUid} has no instances`);
  const identity = `${study.studyInstanceUid}|${series.map((s) => s.instances.map((i) => i.sopInstanceUid).join(',')).join('|')}`;
  const sopInstanceUid = derivedUid(`kos|${identity}`);
  const seriesInstanceUid = derivedUid(`kos-series|${identity}`);
  const first = study.instances[0];
  const date = now.toISOString().slice(0, 10).replace(/-/g, '');
  const time = now.toISOString().slice(11, 19).replace(/:/g, '');
  const opt = (k: string, v: string | undefined) => (v === undefined ? {} : { [k]: v });
  const dataset: Record<string, unknown> = {
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: KOS_SOP_CLASS,
    SOPInstanceUID: sopInstanceUid,
    StudyDate: str(first, '00080020') ?? '',
    StudyTime: str(first, '00080030') ?? '',
    ContentDate: date,
    ContentTime: time,
    AccessionNumber: str(first, '00080050') ?? '',
    Modality: 'KO',
    Manufacturer: 'xcai imaging-source',
    ReferringPhysicianName: personName(first, '00080090') ?? '',
    ReferencedPerformedProcedureStepSequence: [],
    PatientName: personName(first, '00100010') ?? '',
    PatientID: str(first, '00100020') ?? '',
    ...opt('IssuerOfPatientID', str(first, '00100021')),
    PatientBirthDate: str(first, '00100030') ?? '',
    PatientSex: str(first, '00100040') ?? '',
    StudyInstanceUID: study.studyInstanceUid,
    StudyID: str(first, '00200010') ?? '',
    ...opt('StudyDescription', str(first, '00081030')),
    SeriesInstanceUID: seriesInstanceUid,
    SeriesNumber: '9999',
    InstanceNumber: '1',
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [code('113030', 'DCM', 'Manifest')],
    ContinuityOfContent: 'SEPARATE',
    CurrentRequestedProcedureEvidenceSequence: [
      {
        ReferencedSeriesSequence: series.map((s) => ({
          ReferencedSOPSequence: s.instances.map((i) => ({
            ReferencedSOPClassUID: i.sopClassUid,
            ReferencedSOPInstanceUID: i.sopInstanceUid,
          })),
          SeriesInstanceUID: s.seriesInstanceUid,
          RetrieveLocationUID: retrieveLocationUid,
        })),
        StudyInstanceUID: study.studyInstanceUid,
      },
    ],
    ContentTemplateSequence: [{ MappingResource: 'DCMR', TemplateIdentifier: '2010' }],
    ContentSequence: series.flatMap((s) =>
      s.instances.map((i) => ({
        RelationshipType: 'CONTAINS',
        ValueType: 'IMAGE',
        ReferencedSOPSequence: [
          { ReferencedSOPClassUID: i.sopClassUid, ReferencedSOPInstanceUID: i.sopInstanceUid },
        ],
      })),
    ),
  };
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: KOS_SOP_CLASS,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_VR_LE,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: 'XCAI_BRIDGE_1',
  };
  const { DicomDict, DicomMetaDictionary } = dcmjs.data;
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  const bytes = Buffer.from(dict.write());
  return { sopInstanceUid, seriesInstanceUid, bytes, series, instanceCount: count };
}

/** Modalities of the study's series, for the XDS eventCodeList (DCM codes). */
export function modalities(series: SeriesRefs[]): string[] {
  return [
    ...new Set(series.map((s) => s.modality).filter((m): m is string => !!m && m !== 'KO' && m !== 'SR')),
  ];
}

export { strs };
