/**
 * XDS-I.b imaging manifests: Key Object Selection Documents (TID 2010, title DCM 113030 "Manifest") that
 * list every instance of a study under CurrentRequestedProcedureEvidenceSequence with the Imaging Document
 * Source's RetrieveLocationUID, and an IMAGE content item per instance; and a reader for such KOS files.
 */
import { encodeText } from './charset';
import {
  ascii,
  encodePart10,
  encoded,
  items,
  parsePart10,
  sq,
  stringValue,
  TS_EXPLICIT_VR_LE,
  uid,
  type Element,
} from './dicom';
import {
  MANUFACTURER,
  patientElements,
  SOP_CLASS,
  studyElements,
  type PatientContext,
  type StudyContext,
} from './iod';

export interface KosInstanceRef {
  sopClassUid: string;
  sopInstanceUid: string;
}

export interface KosSeriesRef {
  seriesInstanceUid: string;
  instances: KosInstanceRef[];
}

export interface KosParams {
  patient: PatientContext;
  study: StudyContext;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  seriesNumber: number;
  instanceNumber: number;
  /** local ContentDate/ContentTime */
  content: { date: string; time: string };
  /** the Imaging Document Source's repositoryUniqueId */
  retrieveLocationUid: string;
  series: KosSeriesRef[];
}

function code(value: string, scheme: string, meaning: string): Element[] {
  return [
    ascii(0x00080100, 'SH', value),
    ascii(0x00080102, 'SH', scheme),
    encoded(0x00080104, 'LO', encodeText('ISO_IR 6', meaning)),
  ];
}

function sopRef(i: KosInstanceRef): Element[] {
  return [uid(0x00081150, i.sopClassUid), uid(0x00081155, i.sopInstanceUid)];
}

/** A Part 10 KOS manifest in Explicit VR Little Endian. */
export function buildKos(p: KosParams): Buffer {
  const cs = p.patient.characterSet;
  const evidence: Element[][] = [
    [
      sq(
        0x00081115,
        p.series.map((s) => [
          sq(0x00081199, s.instances.map(sopRef)),
          uid(0x0020000e, s.seriesInstanceUid),
          uid(0x0040e011, p.retrieveLocationUid),
        ]),
      ),
      uid(0x0020000d, p.study.studyInstanceUid),
    ],
  ];
  const content: Element[][] = [
    [
      ascii(0x0040a010, 'CS', 'CONTAINS'),
      ascii(0x0040a040, 'CS', 'TEXT'),
      sq(0x0040a043, [code('113012', 'DCM', 'Key Object Description')]),
      encoded(0x0040a160, 'UT', encodeText(cs, p.study.description)),
    ],
    ...p.series.flatMap((s) =>
      s.instances.map((i) => [
        sq(0x00081199, [sopRef(i)]),
        ascii(0x0040a010, 'CS', 'CONTAINS'),
        ascii(0x0040a040, 'CS', 'IMAGE'),
      ]),
    ),
  ];
  const elements: Element[] = [
    ...patientElements(p.patient),
    ...studyElements(p.study, cs),
    uid(0x00080016, SOP_CLASS.keyObjectSelection),
    uid(0x00080018, p.sopInstanceUid),
    ascii(0x00080023, 'DA', p.content.date),
    ascii(0x00080033, 'TM', p.content.time),
    ascii(0x00080060, 'CS', 'KO'),
    encoded(0x00080070, 'LO', encodeText('ISO_IR 6', MANUFACTURER)),
    sq(0x00081111, []),
    uid(0x0020000e, p.seriesInstanceUid),
    ascii(0x00200011, 'IS', String(p.seriesNumber)),
    ascii(0x00200013, 'IS', String(p.instanceNumber)),
    ascii(0x0040a040, 'CS', 'CONTAINER'),
    sq(0x0040a043, [code('113030', 'DCM', 'Manifest')]),
    ascii(0x0040a050, 'CS', 'SEPARATE'),
    sq(0x0040a375, evidence),
    sq(0x0040a504, [[ascii(0x00080105, 'CS', 'DCMR'), ascii(0x0040db00, 'CS', '2010')]]),
    sq(0x0040a730, content),
  ];
  return encodePart10(SOP_CLASS.keyObjectSelection, p.sopInstanceUid, TS_EXPLICIT_VR_LE, elements);
}

export interface KosSeries {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  /** (0040,E011): the Imaging Document Source to send RAD-69 to */
  retrieveLocationUid?: string;
  retrieveAeTitle?: string;
  instances: KosInstanceRef[];
}

export interface KosContents {
  /** the KOS's own SOP Instance UID (= the XDS document uniqueId) */
  sopInstanceUid: string;
  studyInstanceUid: string;
  patientId: string;
  issuerOfPatientId?: string;
  /** every referenced series, from all studies of the evidence sequence, each with its study */
  series: KosSeries[];
}

/** Reads the references of a KOS manifest (Part 10, Explicit or Implicit VR Little Endian). */
export function readKos(bytes: Buffer): KosContents {
  const { dataset } = parsePart10(bytes);
  const sopClassUid = stringValue(dataset, 0x00080016);
  if (sopClassUid !== SOP_CLASS.keyObjectSelection) {
    throw new Error(`not a Key Object Selection Document (SOP Class ${sopClassUid ?? 'missing'})`);
  }
  const series: KosSeries[] = [];
  for (const study of items(dataset, 0x0040a375)) {
    const studyInstanceUid = stringValue(study, 0x0020000d);
    if (!studyInstanceUid) throw new Error('KOS evidence item without StudyInstanceUID');
    for (const s of items(study, 0x00081115)) {
      const seriesInstanceUid = stringValue(s, 0x0020000e);
      if (!seriesInstanceUid) throw new Error('KOS series item without SeriesInstanceUID');
      series.push({
        studyInstanceUid,
        seriesInstanceUid,
        retrieveLocationUid: stringValue(s, 0x0040e011) || undefined,
        retrieveAeTitle: stringValue(s, 0x00080054) || undefined,
        instances: items(s, 0x00081199).map((i) => {
          const sopClass = stringValue(i, 0x00081150);
          const sopInstance = stringValue(i, 0x00081155);
          if (!sopClass || !sopInstance) throw new Error('KOS SOP reference without class or instance UID');
          return { sopClassUid: sopClass, sopInstanceUid: sopInstance };
        }),
      });
    }
  }
  const studyInstanceUid = stringValue(dataset, 0x0020000d) || series[0]?.studyInstanceUid;
  if (!studyInstanceUid) throw new Error('KOS without StudyInstanceUID');
  return {
    sopInstanceUid: stringValue(dataset, 0x00080018) ?? '',
    studyInstanceUid,
    patientId: stringValue(dataset, 0x00100020) ?? '',
    issuerOfPatientId: stringValue(dataset, 0x00100021) || undefined,
    series,
  };
}
