/**
 * Image instances of the seed: CT, MR, CR Image Storage or Secondary Capture, with the Patient, General
 * Study, General Series, Equipment, General Image, Image Plane (CT/MR) and Image Pixel modules, and
 * synthetic 12-bit pixel data from a seeded PRNG sized so the file comes close to a requested size.
 */
import { endianness } from 'node:os';
import { encodeText, specificCharacterSet, personNameValue } from './charset';
import { encodeFrame } from './codec';
import {
  ascii,
  binary,
  elementHeaderLength,
  encapsulated,
  encodePart10,
  encoded,
  explicitFor,
  isEncapsulated,
  sq,
  TS_EXPLICIT_VR_LE,
  uid,
  us,
  type Element,
} from './dicom';
import type { CharacterSet, PersonNameSpec } from './types';

export const SOP_CLASS = {
  ct: '1.2.840.10008.5.1.4.1.1.2',
  mr: '1.2.840.10008.5.1.4.1.1.4',
  cr: '1.2.840.10008.5.1.4.1.1.1',
  secondaryCapture: '1.2.840.10008.5.1.4.1.1.7',
  keyObjectSelection: '1.2.840.10008.5.1.4.1.1.88.59',
} as const;

export const MANUFACTURER = 'XCAI Reference Community';

export function sopClassForModality(modality: string): string {
  switch (modality) {
    case 'CT':
      return SOP_CLASS.ct;
    case 'MR':
      return SOP_CLASS.mr;
    case 'CR':
      return SOP_CLASS.cr;
    default:
      return SOP_CLASS.secondaryCapture;
  }
}

export interface PatientContext {
  characterSet: CharacterSet;
  name: PersonNameSpec;
  /** CX.1 */
  patientId: string;
  /** IssuerOfPatientID: the CX namespace id, or its OID if there is none */
  issuer: string;
  /** the assigning authority's OID */
  universalId: string;
  birthDate: string;
  sex: string;
}

export interface StudyContext {
  studyInstanceUid: string;
  accessionNumber: string;
  description: string;
  date: string;
  time: string;
  utcOffset: string;
  institutionName: string;
}

/** SOP Common (character set, time zone) and Patient module elements. */
export function patientElements(p: PatientContext): Element[] {
  const charset = specificCharacterSet(p.characterSet);
  const els: Element[] = [
    encoded(0x00100010, 'PN', encodeText(p.characterSet, personNameValue(p.name))),
    encoded(0x00100020, 'LO', encodeText('ISO_IR 6', p.patientId)),
    encoded(0x00100021, 'LO', encodeText('ISO_IR 6', p.issuer)),
    sq(0x00100024, [
      [encoded(0x00400032, 'UT', encodeText('ISO_IR 6', p.universalId)), ascii(0x00400033, 'CS', 'ISO')],
    ]),
    ascii(0x00100030, 'DA', p.birthDate),
    ascii(0x00100040, 'CS', p.sex),
  ];
  if (charset) els.push(ascii(0x00080005, 'CS', charset));
  return els;
}

/** General Study module elements (plus the SOP Common time zone offset). */
export function studyElements(s: StudyContext, cs: CharacterSet): Element[] {
  return [
    ascii(0x00080020, 'DA', s.date),
    ascii(0x00080030, 'TM', s.time),
    encoded(0x00080050, 'SH', encodeText('ISO_IR 6', s.accessionNumber)),
    encoded(0x00080090, 'PN', Buffer.alloc(0)),
    ascii(0x00080201, 'SH', s.utcOffset),
    encoded(0x00081030, 'LO', encodeText(cs, s.description)),
    uid(0x0020000d, s.studyInstanceUid),
    encoded(0x00200010, 'SH', encodeText('ISO_IR 6', s.accessionNumber)),
  ];
}

export interface ImageParams {
  patient: PatientContext;
  study: StudyContext;
  modality: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  frameOfReferenceUid: string;
  seriesNumber: number;
  seriesDescription: string;
  instanceNumber: number;
  transferSyntaxUid: string;
  /** requested file size in bytes */
  targetSize: number;
  /** PRNG seed for the pixel noise */
  seed: number;
}

const BITS_STORED = 12;
const FIELD_OF_VIEW_MM = 350;
const SLICE_THICKNESS_MM = 5;
const MIN_MATRIX = 8;

/** A DS value: at most 16 characters. */
function ds(n: number): string {
  const s = String(Number(n.toFixed(6)));
  if (s.length > 16) throw new Error(`DS value too long: ${s}`);
  return s;
}

/** Modality-specific and image elements except Rows, Columns and Pixel Data. */
function imageElements(p: ImageParams, sopClassUid: string, columns: number): Element[] {
  const { patient, study } = p;
  const els: Element[] = [
    ...patientElements(patient),
    ...studyElements(study, patient.characterSet),
    uid(0x00080016, sopClassUid),
    uid(0x00080018, p.sopInstanceUid),
    ascii(0x00080021, 'DA', study.date),
    ascii(0x00080023, 'DA', study.date),
    ascii(0x00080031, 'TM', study.time),
    ascii(0x00080033, 'TM', study.time),
    ascii(0x00080060, 'CS', p.modality),
    encoded(0x00080070, 'LO', encodeText('ISO_IR 6', MANUFACTURER)),
    encoded(0x00080080, 'LO', encodeText(patient.characterSet, study.institutionName)),
    encoded(0x0008103e, 'LO', encodeText(patient.characterSet, p.seriesDescription)),
    uid(0x0020000e, p.seriesInstanceUid),
    ascii(0x00200011, 'IS', String(p.seriesNumber)),
    ascii(0x00200013, 'IS', String(p.instanceNumber)),
    us(0x00280002, 1),
    ascii(0x00280004, 'CS', 'MONOCHROME2'),
    us(0x00280100, 16),
    us(0x00280101, BITS_STORED),
    us(0x00280102, BITS_STORED - 1),
    us(0x00280103, 0),
  ];
  // compressed, but losslessly (PS3.3 C.7.6.1.1.5)
  if (isEncapsulated(p.transferSyntaxUid)) els.push(ascii(0x00282110, 'CS', '00'));
  const spacing = (FIELD_OF_VIEW_MM / columns).toFixed(6);
  const z = -(p.instanceNumber - 1) * SLICE_THICKNESS_MM;
  const plane: Element[] = [
    ascii(0x00180050, 'DS', ds(SLICE_THICKNESS_MM)),
    ascii(0x00185100, 'CS', 'HFS'),
    ascii(0x00200012, 'IS', '1'),
    ascii(0x00200032, 'DS', [ds(-FIELD_OF_VIEW_MM / 2), ds(-FIELD_OF_VIEW_MM / 2), ds(z)]),
    ascii(0x00200037, 'DS', ['1', '0', '0', '0', '1', '0']),
    uid(0x00200052, p.frameOfReferenceUid),
    encoded(0x00201040, 'LO', Buffer.alloc(0)),
    ascii(0x00201041, 'DS', ds(z)),
    ascii(0x00280030, 'DS', [spacing, spacing]),
  ];
  switch (sopClassUid) {
    case SOP_CLASS.ct:
      els.push(
        ...plane,
        ascii(0x00080008, 'CS', ['ORIGINAL', 'PRIMARY', 'AXIAL']),
        ascii(0x00180015, 'CS', 'CHEST'),
        ascii(0x00180060, 'DS', '120'),
        ascii(0x00281050, 'DS', '40'),
        ascii(0x00281051, 'DS', '400'),
        ascii(0x00281052, 'DS', '-1024'),
        ascii(0x00281053, 'DS', '1'),
      );
      break;
    case SOP_CLASS.mr:
      els.push(
        ...plane,
        ascii(0x00080008, 'CS', ['ORIGINAL', 'PRIMARY', 'OTHER']),
        ascii(0x00180015, 'CS', 'HEAD'),
        ascii(0x00180020, 'CS', 'SE'),
        ascii(0x00180021, 'CS', 'NONE'),
        ascii(0x00180022, 'CS', ''),
        ascii(0x00180023, 'CS', '2D'),
        ascii(0x00180080, 'DS', '500'),
        ascii(0x00180081, 'DS', '15'),
        ascii(0x00180091, 'IS', '1'),
        ascii(0x00281050, 'DS', '1100'),
        ascii(0x00281051, 'DS', '600'),
      );
      break;
    case SOP_CLASS.cr:
      els.push(
        ascii(0x00080008, 'CS', ['ORIGINAL', 'PRIMARY']),
        ascii(0x00180015, 'CS', 'CHEST'),
        ascii(0x00185101, 'CS', 'PA'),
        ascii(0x00200020, 'CS', ''),
        ascii(0x00281050, 'DS', '1100'),
        ascii(0x00281051, 'DS', '600'),
      );
      break;
    default:
      els.push(
        ascii(0x00080008, 'CS', ['DERIVED', 'SECONDARY']),
        ascii(0x00080064, 'CS', 'SYN'),
        ascii(0x00200020, 'CS', ''),
        ascii(0x00281050, 'DS', '1100'),
        ascii(0x00281051, 'DS', '600'),
      );
  }
  return els;
}

/**
 * Picks a near-square matrix whose 16-bit pixels fill `bytes` as exactly as possible: among column counts
 * within ±12.5 % of √n, the one nearest √n that divides n, else the one leaving the smallest remainder.
 */
export function chooseMatrix(bytes: number): { rows: number; columns: number } {
  const n = Math.max(MIN_MATRIX * MIN_MATRIX, Math.floor(bytes / 2));
  const root = Math.round(Math.sqrt(n));
  let best = { rows: Math.floor(n / root), columns: root, rest: n % root };
  for (let d = 0; d <= root / 8 && best.rest > 0; d++) {
    for (const c of [root - d, root + d]) {
      if (c < MIN_MATRIX || Math.floor(n / c) < MIN_MATRIX || c > 0xffff || Math.floor(n / c) > 0xffff)
        continue;
      const rest = n % c;
      if (rest < best.rest) best = { rows: Math.floor(n / c), columns: c, rest };
    }
  }
  return { rows: best.rows, columns: best.columns };
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/**
 * A body-like ellipse with an inner disc whose radius changes with the slice, plus noise from xorshift32.
 * Stored values 0…4095 (12 bits).
 */
export function renderPixels(rows: number, columns: number, seed: number, slice: number): Buffer {
  const px = new Uint16Array(rows * columns);
  let s = seed >>> 0 || 0x9e3779b9;
  const cx = columns / 2;
  const cy = rows / 2;
  const a = columns * 0.42;
  const b = rows * 0.34;
  const disc = Math.min(rows, columns) * (0.08 + 0.05 * Math.abs(Math.sin(slice * 0.7)));
  for (let y = 0; y < rows; y++) {
    const dy = y - cy;
    // x ranges of the body and of the disc on this row (empty when the row misses them); no Math.* calls
    // in the inner loop, which are slow under jest's vm contexts
    const bodyHalf = dy * dy < b * b ? a * Math.sqrt(1 - (dy * dy) / (b * b)) : -1;
    const discHalf = dy * dy < disc * disc ? Math.sqrt(disc * disc - dy * dy) : -1;
    const body0 = cx - bodyHalf;
    const body1 = cx + bodyHalf;
    const disc0 = cx - discHalf;
    const disc1 = cx + discHalf;
    const row = y * columns;
    for (let x = 0; x < columns; x++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      const base = x > disc0 && x < disc1 ? 1224 : x > body0 && x < body1 ? 1064 : 24;
      px[row + x] = base + ((s >>> 24) & 31) - 16;
    }
  }
  const buf = Buffer.from(px.buffer, px.byteOffset, px.byteLength);
  if (!LITTLE_ENDIAN_HOST) buf.swap16();
  return buf;
}

/**
 * A Part 10 image instance of about `targetSize` bytes (uncompressed; a compressed one has the same
 * matrix and is smaller).
 */
export function buildImage(p: ImageParams): Buffer {
  const sopClassUid = sopClassForModality(p.modality);
  // the matrix is that of the uncompressed instance, so a compressed one holds the same samples
  const layout = isEncapsulated(p.transferSyntaxUid) ? { ...p, transferSyntaxUid: TS_EXPLICIT_VR_LE } : p;
  const explicit = explicitFor(layout.transferSyntaxUid);
  const sizeWithout = (columns: number) =>
    encodePart10(sopClassUid, p.sopInstanceUid, layout.transferSyntaxUid, [
      ...imageElements(layout, sopClassUid, columns),
      us(0x00280010, 0),
      us(0x00280011, 0),
    ]).length + elementHeaderLength('OW', explicit);
  // Only PixelSpacing depends on the matrix, and it has a fixed width except for tiny matrices.
  let header = sizeWithout(512);
  let matrix = chooseMatrix(p.targetSize - header);
  for (let i = 0; i < 3; i++) {
    const h = sizeWithout(matrix.columns);
    if (h === header) break;
    header = h;
    matrix = chooseMatrix(p.targetSize - header);
  }
  const pixels = renderPixels(matrix.rows, matrix.columns, p.seed, p.instanceNumber);
  const pixelData = isEncapsulated(p.transferSyntaxUid)
    ? encapsulated([encodeFrame(p.transferSyntaxUid, pixels, matrix.rows, matrix.columns, BITS_STORED)])
    : binary(0x7fe00010, 'OW', pixels);
  return encodePart10(sopClassUid, p.sopInstanceUid, p.transferSyntaxUid, [
    ...imageElements(p, sopClassUid, matrix.columns),
    us(0x00280010, matrix.rows),
    us(0x00280011, matrix.columns),
    pixelData,
  ]);
}
