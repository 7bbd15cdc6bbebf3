/**
 * The seed's compressed instances are lossless: our own JPEG Lossless SV1 (1.2.840.10008.1.2.4.70) and
 * JPEG-LS Lossless (1.2.840.10008.1.2.4.80) encoders, decoded by an independent decoder (dcmtk's
 * dcmdjpeg and dcmdjpls, which use the IJG and CharLS code), give back every sample exactly — for the
 * seed's own images and for images made to hit the encoders' corners (long runs, full-range noise,
 * 0xFF bytes in the entropy-coded data, run interruptions, gradients).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame } from '../../services/reference-community/src/seed/codec';
import {
  ascii,
  encapsulated,
  encodePart10,
  parsePart10,
  TS_JPEG_LOSSLESS_SV1,
  TS_JPEG_LS_LOSSLESS,
  uid,
  us,
} from '../../services/reference-community/src/seed/dicom';
import { buildImage, renderPixels, SOP_CLASS } from '../../services/reference-community/src/seed/iod';

const SOP = '1.2.392.999.7.1';
let dir: string;

beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'xcai-lossless-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Decodes a compressed Part 10 file with dcmtk; returns the Pixel Data it wrote (Explicit VR LE). */
function decodeWithDcmtk(file: Buffer, ts: string): Buffer {
  const input = join(dir, 'in.dcm');
  const output = join(dir, 'out.dcm');
  writeFileSync(input, file);
  execFileSync(ts === TS_JPEG_LS_LOSSLESS ? 'dcmdjpls' : 'dcmdjpeg', [input, output], { stdio: 'pipe' });
  const { dataset, transferSyntaxUid } = parsePart10(readFileSync(output));
  expect(transferSyntaxUid).toBe('1.2.840.10008.1.2.1');
  return dataset.get(0x7fe00010)?.value as Buffer;
}

function part10(ts: string, rows: number, columns: number, frame: Buffer): Buffer {
  return encodePart10(SOP_CLASS.secondaryCapture, SOP, ts, [
    uid(0x00080016, SOP_CLASS.secondaryCapture),
    uid(0x00080018, SOP),
    us(0x00280002, 1),
    ascii(0x00280004, 'CS', 'MONOCHROME2'),
    us(0x00280010, rows),
    us(0x00280011, columns),
    us(0x00280100, 16),
    us(0x00280101, 12),
    us(0x00280102, 11),
    us(0x00280103, 0),
    encapsulated([frame]),
  ]);
}

function image(rows: number, columns: number, f: (x: number, y: number) => number): Buffer {
  const b = Buffer.alloc(rows * columns * 2);
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < columns; x++) b.writeUInt16LE(f(x, y), 2 * (y * columns + x));
  return b;
}

let s = 0x12345678;
const random = () => ((s ^= s << 13), (s ^= s >>> 17), (s ^= s << 5), s >>> 0);

const cases: [string, number, number, (x: number, y: number) => number][] = [
  ['flat (runs to the end of every line)', 16, 33, () => 1000],
  ['full-range noise', 40, 37, () => random() & 4095],
  ['runs interrupted', 31, 64, (x, y) => (x % 17 < 12 ? 2000 : 2000 + ((x * 7 + y) % 9) - 4)],
  ['steps and gradients', 48, 48, (x, y) => (x < 24 ? x * 85 : 4095 - y * 85) & 4095],
  ['extremes', 9, 70, (x, y) => ((x + y) % 3 === 0 ? 0 : (x * y) % 2 ? 4095 : 4094)],
  ['one column', 50, 1, (_x, y) => (y * 131) % 4096],
  ['one row', 1, 77, (x) => (x * 53) % 4096],
];

describe.each([
  ['JPEG Lossless SV1', TS_JPEG_LOSSLESS_SV1],
  ['JPEG-LS Lossless', TS_JPEG_LS_LOSSLESS],
])('%s', (_name, ts) => {
  it.each(cases)('decodes back exactly: %s', (_what, rows, columns, f) => {
    const pixels = image(rows, columns, f);
    const decoded = decodeWithDcmtk(
      part10(ts, rows, columns, encodeFrame(ts, pixels, rows, columns, 12)),
      ts,
    );
    expect(decoded.equals(pixels)).toBe(true);
  });

  it('the seed image in this transfer syntax holds exactly the samples of the uncompressed one', () => {
    const params = {
      patient: {
        characterSet: 'ISO_IR 6' as const,
        name: { alphabetic: 'Test^Lossless' },
        patientId: 'L1',
        issuer: '1.2.3',
        universalId: '1.2.3',
        birthDate: '19700101',
        sex: 'O',
      },
      study: {
        studyInstanceUid: '1.2.392.999.7.2',
        accessionNumber: 'L1',
        description: 'lossless',
        date: '20250101',
        time: '120000',
        utcOffset: '+0900',
        institutionName: 'Test',
      },
      modality: 'CT',
      sopInstanceUid: SOP,
      seriesInstanceUid: '1.2.392.999.7.3',
      frameOfReferenceUid: '1.2.392.999.7.4',
      seriesNumber: 1,
      seriesDescription: 'CT',
      instanceNumber: 3,
      targetSize: 96 * 1024,
      seed: 99,
    };
    const raw = parsePart10(buildImage({ ...params, transferSyntaxUid: '1.2.840.10008.1.2.1' }));
    const file = buildImage({ ...params, transferSyntaxUid: ts });
    const packed = parsePart10(file);
    expect(packed.transferSyntaxUid).toBe(ts);
    expect(packed.dataset.get(0x00282110)?.value?.toString('latin1')).toBe('00');
    expect(packed.dataset.get(0x7fe00010)?.fragments?.length).toBe(2); // empty offset table + one frame
    expect(file.length).toBeLessThan(raw.dataset.get(0x7fe00010)?.value?.length as number);
    const rows = raw.dataset.get(0x00280010)?.value?.readUInt16LE(0) as number;
    const columns = raw.dataset.get(0x00280011)?.value?.readUInt16LE(0) as number;
    expect(raw.dataset.get(0x7fe00010)?.value?.equals(renderPixels(rows, columns, 99, 3))).toBe(true);
    expect(decodeWithDcmtk(file, ts).equals(raw.dataset.get(0x7fe00010)?.value as Buffer)).toBe(true);
  });
});

it('writes no lossy transfer syntax', () => {
  const pixels = image(8, 8, () => 5);
  expect(() => encodeFrame('1.2.840.10008.1.2.4.50', pixels, 8, 8, 12)).toThrow(/no lossless encoder/);
  expect(() => encodeFrame('1.2.840.10008.1.2.4.81', pixels, 8, 8, 12)).toThrow(/no lossless encoder/);
});
