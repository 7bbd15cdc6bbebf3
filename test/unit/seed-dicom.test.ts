import { readFileSync } from 'node:fs';
import {
  ascii,
  encodeDataset,
  encodePart10,
  encoded,
  fileMetaHeader,
  IMPLEMENTATION_CLASS_UID,
  items,
  parseDataset,
  parsePart10,
  sq,
  stringValue,
  TS_EXPLICIT_VR_LE,
  TS_IMPLICIT_VR_LE,
  uid,
  us,
} from '../../services/reference-community/src/seed/dicom';
import { readKos } from '../../services/reference-community/src/seed/kos';
import { sample } from '../support/fixtures';

const NIST_KOS = sample('kos/nist-xdsi-kos.dcm');

describe('seed DICOM writer and reader', () => {
  it('pads UI with NUL and text with space, and writes explicit VR headers', () => {
    const bytes = encodeDataset([uid(0x00080018, '1.2.3'), ascii(0x00080060, 'CS', 'KOS')], true);
    expect(bytes.toString('hex')).toBe(
      '08001800' +
        '5549' +
        '0600' +
        Buffer.from('1.2.3\0').toString('hex') +
        '08006000' +
        '4353' +
        '0400' +
        Buffer.from('KOS ').toString('hex'),
    );
  });

  it('writes implicit VR headers and sorts elements by tag', () => {
    const bytes = encodeDataset([us(0x00280010, 7), uid(0x00080016, '1.2')], false);
    expect(bytes.toString('hex')).toBe(
      '08001600' + '04000000' + '312e3200' + '28001000' + '02000000' + '0700',
    );
  });

  it('writes the file meta group with its group length and parses it back', () => {
    const meta = fileMetaHeader('1.2.840.10008.5.1.4.1.1.7', '1.2.3.4', TS_EXPLICIT_VR_LE);
    expect(meta.subarray(0, 128).equals(Buffer.alloc(128))).toBe(true);
    expect(meta.toString('latin1', 128, 132)).toBe('DICM');
    // (0002,0000) UL 4 <length of the rest of group 2>
    expect(meta.readUInt16LE(132)).toBe(0x0002);
    expect(meta.readUInt16LE(134)).toBe(0x0000);
    expect(meta.toString('latin1', 136, 138)).toBe('UL');
    expect(meta.readUInt32LE(140)).toBe(meta.length - 144);
    const parsed = parsePart10(meta);
    expect(stringValue(parsed.meta, 0x00020003)).toBe('1.2.3.4');
    expect(stringValue(parsed.meta, 0x00020012)).toBe(IMPLEMENTATION_CLASS_UID);
    expect(parsed.dataset.size).toBe(0);
  });

  it.each([TS_EXPLICIT_VR_LE, TS_IMPLICIT_VR_LE])('round-trips nested sequences in %s', (ts) => {
    const file = encodePart10('1.2.840.10008.5.1.4.1.1.88.59', '1.2.3', ts, [
      sq(0x0040a375, [
        [
          sq(0x00081115, [
            [
              sq(0x00081199, [[uid(0x00081150, '1.2'), uid(0x00081155, '1.2.3.4.5')]]),
              uid(0x0020000e, '1.2.3.4'),
            ],
          ]),
          uid(0x0020000d, '1.2.3'),
        ],
      ]),
      encoded(0x00100010, 'PN', Buffer.from('A^B')),
    ]);
    const { dataset, transferSyntaxUid } = parsePart10(file);
    expect(transferSyntaxUid).toBe(ts);
    const study = items(dataset, 0x0040a375)[0];
    expect(stringValue(study, 0x0020000d)).toBe('1.2.3');
    const series = items(study, 0x00081115)[0];
    expect(stringValue(items(series, 0x00081199)[0], 0x00081155)).toBe('1.2.3.4.5');
    expect(dataset.get(0x00100010)?.value?.toString('latin1')).toBe('A^B ');
  });

  it('reads undefined-length sequences and items', () => {
    const undefinedLength = Buffer.from(
      '4000' +
        '75a3' +
        '5351' +
        '0000' +
        'ffffffff' + // (0040,A375) SQ, undefined length
        'feff' +
        '00e0' +
        'ffffffff' + // item, undefined length
        '2000' +
        '0d00' +
        '5549' +
        '0400' +
        '312e3200' + // (0020,000D) UI "1.2\0"
        'feff' +
        '0de0' +
        '00000000' + // item delimitation
        'feff' +
        'dde0' +
        '00000000', // sequence delimitation
      'hex',
    );
    const ds = parseDataset(undefinedLength, TS_EXPLICIT_VR_LE);
    expect(stringValue(items(ds, 0x0040a375)[0], 0x0020000d)).toBe('1.2');
  });

  it('rejects truncated data and files without DICM', () => {
    const file = encodePart10('1.2', '1.2.3', TS_EXPLICIT_VR_LE, [uid(0x00080018, '1.2.3.4.5.6')]);
    expect(() => parsePart10(file.subarray(0, file.length - 3))).toThrow(/truncated/);
    expect(() => parsePart10(Buffer.alloc(200))).toThrow(/DICM/);
    expect(() => encodePart10('1.2', '1.2.3', '1.2.840.10008.1.2.4.50', [])).toThrow(
      /unsupported transfer syntax/,
    );
  });

  it('reads the NIST XDS-I.b sample KOS', () => {
    const kos = readKos(readFileSync(NIST_KOS));
    expect(kos).toEqual({
      sopInstanceUid: '2.25.90214658647374166344513344800740950001',
      studyInstanceUid: '1.3.6.1.4.1.21367.201599.1.201604021948007',
      patientId: 'IDCDEPT001-a',
      issuerOfPatientId: undefined,
      series: [
        {
          studyInstanceUid: '1.3.6.1.4.1.21367.201599.1.201604021948007',
          seriesInstanceUid: '1.3.6.1.4.1.21367.201599.2.201604021948008',
          retrieveLocationUid: '1.3.6.1.4.1.21367.102.1.1',
          retrieveAeTitle: 'DCM4CHEE',
          instances: [
            {
              sopClassUid: '1.2.840.10008.5.1.4.1.1.1',
              sopInstanceUid: '1.3.6.1.4.1.21367.201599.3.201604021948008.1',
            },
          ],
        },
      ],
    });
  });

  it('refuses to read a non-KOS object as a KOS', () => {
    const file = encodePart10('1.2.840.10008.5.1.4.1.1.7', '1.2.3', TS_EXPLICIT_VR_LE, [
      uid(0x00080016, '1.2.840.10008.5.1.4.1.1.7'),
    ]);
    expect(() => readKos(file)).toThrow(/not a Key Object Selection Document/);
  });
});
