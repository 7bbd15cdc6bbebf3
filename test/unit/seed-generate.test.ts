import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TextDecoder } from 'node:util';
import {
  items,
  parsePart10,
  stringValue,
  TS_EXPLICIT_VR_LE,
  TS_IMPLICIT_VR_LE,
  TS_JPEG_LOSSLESS_SV1,
  TS_JPEG_LS_LOSSLESS,
  type ParsedDataset,
} from '../../services/reference-community/src/seed/dicom';
import {
  defaultDemoSpecs,
  generateCommunitySeed,
  readKos,
  type ManifestStudy,
  type SeedManifest,
  type SeedSpec,
} from '../../services/reference-community/src/seed/generate';

/** The part of dcmjs these tests use (an independent DICOM parser). */
interface Dcmjs {
  log: { setLevel(level: string): void; getLogger(name: string): { setLevel(level: string): void } };
  data: {
    DicomMessage: {
      readFile(
        buffer: ArrayBuffer,
        options?: { ignoreErrors?: boolean },
      ): { dict: Record<string, unknown>; meta: Record<string, unknown> };
    };
    DicomMetaDictionary: { naturalizeDataset(dict: Record<string, unknown>): Record<string, unknown> };
  };
}
const dcmjs = createRequire(__filename)('dcmjs') as Dcmjs;
dcmjs.log.setLevel('silent');
dcmjs.log.getLogger('validation.dcmjs').setLevel('silent');

const hasTool = (tool: string) => spawnSync(tool, ['--version']).status === 0;
const withDcmdump = hasTool('dcmdump') ? it : it.skip;
const withDsrdump = hasTool('dsrdump') ? it : it.skip;

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

/** PS3.5 Annex H.3.1 PatientName bytes (see seed-charset.test.ts for the column/row form). */
const YAMADA_BYTES = Buffer.from(
  [
    '59616d6164615e5461726f753d', // Yamada^Tarou=
    '1b2442',
    '3b334544',
    '1b2842',
    '5e', // ESC $ B 山田 ESC ( B ^
    '1b2442',
    '42404f3a',
    '1b2842',
    '3d', // ESC $ B 太郎 ESC ( B =
    '1b2442',
    '2464245e2440',
    '1b2842',
    '5e', // ESC $ B やまだ ESC ( B ^
    '1b2442',
    '243f246d2426',
    '1b2842', // ESC $ B たろう ESC ( B
  ].join(''),
  'hex',
);
/** "Sato^Hanako=" + UTF-8 佐藤^花子=さとう^はなこ + one space of padding (45 → 46 bytes). */
const SATO_BYTES = Buffer.concat([
  Buffer.from('Sato^Hanako=', 'latin1'),
  Buffer.from('e4bd90e897a45ee88ab1e5ad903de38195e381a8e381865ee381afe381aae38193', 'hex'),
  Buffer.from(' ', 'latin1'),
]);

function files(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(dir, join(prefix, e.name)) : [join(prefix, e.name)]))
    .sort();
}

function toArrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
}

let root: string;
let specs: SeedSpec[];
let manifests: SeedManifest[];

const dirOf = (run: 'a' | 'b', community: string) => join(root, run, community);
const read = (m: SeedManifest, rel: string) => readFileSync(join(dirOf('a', m.spec.community), rel));
const allStudies = () =>
  manifests.flatMap((m) => m.patients.flatMap((p) => p.studies.map((s) => ({ m, p, s }))));

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'seed-test-'));
  specs = defaultDemoSpecs();
  manifests = [];
  for (const spec of specs) manifests.push(await generateCommunitySeed(spec, dirOf('a', spec.community)));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('generateCommunitySeed on defaultDemoSpecs', () => {
  it('is deterministic: same spec, same manifest and same bytes', async () => {
    for (const spec of defaultDemoSpecs()) {
      const again = await generateCommunitySeed(spec, dirOf('b', spec.community));
      const first = manifests.find((m) => m.spec.community === spec.community) as SeedManifest;
      expect(again).toEqual(first);
      const a = dirOf('a', spec.community);
      const b = dirOf('b', spec.community);
      expect(files(b)).toEqual(files(a));
      for (const f of files(a)) expect(sha1(readFileSync(join(b, f)))).toBe(sha1(readFileSync(join(a, f))));
    }
  });

  it('writes manifest.json equal to the returned manifest', () => {
    for (const m of manifests) {
      expect(JSON.parse(read(m, 'manifest.json').toString('utf8'))).toEqual(m);
    }
  });

  it('writes every instance as a Part 10 file with the manifest UIDs, size and hash', () => {
    const transferSyntaxes = new Map<string, number>();
    for (const { m, s } of allStudies()) {
      const spec = specs.find((x) => x.community === m.spec.community) as SeedSpec;
      const studySpec = spec.patients.flatMap((p) => p.studies).find((x) => x.description === s.description);
      const requested = studySpec?.instanceSize as number;
      for (const series of s.series) {
        for (const inst of series.instances) {
          const bytes = read(m, inst.path);
          expect(bytes.length).toBe(inst.size);
          expect(sha1(bytes)).toBe(inst.sha1);
          const compressed = [TS_JPEG_LOSSLESS_SV1, TS_JPEG_LS_LOSSLESS].includes(inst.transferSyntaxUid);
          expect(inst.size).toBeLessThanOrEqual(requested);
          // the requested size is that of the uncompressed instance (a compressed one is smaller)
          if (!compressed) expect(requested - inst.size).toBeLessThan(requested * 0.005);
          transferSyntaxes.set(
            inst.transferSyntaxUid,
            (transferSyntaxes.get(inst.transferSyntaxUid) ?? 0) + 1,
          );

          // own parser
          expect(bytes.subarray(0, 128).equals(Buffer.alloc(128))).toBe(true);
          expect(bytes.toString('latin1', 128, 132)).toBe('DICM');
          const { meta, dataset, transferSyntaxUid } = parsePart10(bytes);
          expect(transferSyntaxUid).toBe(inst.transferSyntaxUid);
          expect(stringValue(meta, 0x00020002)).toBe(inst.sopClassUid);
          expect(stringValue(meta, 0x00020003)).toBe(inst.sopInstanceUid);
          expect(stringValue(dataset, 0x00080016)).toBe(inst.sopClassUid);
          expect(stringValue(dataset, 0x00080018)).toBe(inst.sopInstanceUid);
          expect(stringValue(dataset, 0x0020000d)).toBe(s.studyInstanceUid);
          expect(stringValue(dataset, 0x0020000e)).toBe(series.seriesInstanceUid);
          expect(stringValue(dataset, 0x00080060)).toBe(series.modality);

          // dcmjs, independently
          const dicom = dcmjs.data.DicomMessage.readFile(toArrayBuffer(bytes), { ignoreErrors: true });
          const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dicom.dict);
          const dm = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dicom.meta);
          expect(dm.TransferSyntaxUID).toBe(inst.transferSyntaxUid);
          expect(dm.MediaStorageSOPInstanceUID).toBe(inst.sopInstanceUid);
          expect(dm.ImplementationClassUID).toMatch(/^2\.25\.\d+$/);
          expect(ds.SOPInstanceUID).toBe(inst.sopInstanceUid);
          expect(ds.SeriesInstanceUID).toBe(series.seriesInstanceUid);
          expect(ds.StudyInstanceUID).toBe(s.studyInstanceUid);
          expect(String(ds.PatientID)).toMatch(/^JP100[123]$/);
          expect(ds.IssuerOfPatientID).toBe('1.3.6.1.4.1.21367.13.20.1000');
          expect([
            ds.BitsAllocated,
            ds.BitsStored,
            ds.HighBit,
            ds.PixelRepresentation,
            ds.SamplesPerPixel,
          ]).toEqual([16, 12, 11, 0, 1]);
          expect(ds.PhotometricInterpretation).toBe('MONOCHROME2');
          const pixels = (ds.PixelData as ArrayBuffer[])[0];
          if (compressed) expect(dataset.get(0x7fe00010)?.fragments?.length).toBe(2);
          else expect(pixels.byteLength).toBe((ds.Rows as number) * (ds.Columns as number) * 2);
        }
      }
    }
    // mostly Explicit VR LE, some Implicit VR LE, JPEG Lossless and JPEG-LS Lossless, nothing else
    expect([...transferSyntaxes.keys()].sort()).toEqual(
      [TS_IMPLICIT_VR_LE, TS_EXPLICIT_VR_LE, TS_JPEG_LOSSLESS_SV1, TS_JPEG_LS_LOSSLESS].sort(),
    );
    expect(transferSyntaxes.get(TS_EXPLICIT_VR_LE)).toBeGreaterThan(
      transferSyntaxes.get(TS_IMPLICIT_VR_LE) as number,
    );
  });

  it('encodes the Japanese names with the exact intended bytes', () => {
    const expected: Record<string, { charset: Buffer | undefined; name: Buffer; text: string }> = {
      'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO': {
        charset: Buffer.from('\\ISO 2022 IR 87 ', 'latin1'),
        name: YAMADA_BYTES,
        text: 'Yamada^Tarou=山田^太郎=やまだ^たろう',
      },
      'JP1002^^^&1.3.6.1.4.1.21367.13.20.1000&ISO': {
        charset: Buffer.from('ISO_IR 192', 'latin1'),
        name: SATO_BYTES,
        text: 'Sato^Hanako=佐藤^花子=さとう^はなこ',
      },
      'JP1003^^^&1.3.6.1.4.1.21367.13.20.1000&ISO': {
        charset: undefined,
        name: Buffer.from('Tanaka^Kenji', 'latin1'),
        text: 'Tanaka^Kenji',
      },
    };
    let checked = 0;
    for (const { m, p, s } of allStudies()) {
      const want = expected[p.id];
      const paths = [
        s.kos.path,
        ...s.deprecatedKos.map((k) => k.path),
        ...s.series.flatMap((x) => x.instances.map((i) => i.path)),
      ];
      for (const path of paths) {
        const bytes = read(m, path);
        const { dataset } = parsePart10(bytes);
        expect(dataset.get(0x00080005)?.value).toEqual(want.charset);
        const name = dataset.get(0x00100010)?.value as Buffer;
        expect(name.toString('hex')).toBe(want.name.toString('hex'));
        expect(bytes.indexOf(want.name)).toBeGreaterThan(132);
        const decoder = p.characterSet === 'ISO 2022 IR 87' ? 'iso-2022-jp' : 'utf-8';
        expect(new TextDecoder(decoder).decode(name).trimEnd()).toBe(want.text);
        checked++;
      }
      expect(p.dicomName).toBe(want.text);
    }
    expect(checked).toBeGreaterThan(50);
  });

  withDcmdump('dcmdump reads every file and shows the names as written', () => {
    for (const m of manifests) {
      const dir = dirOf('a', m.spec.community);
      const all = files(dir).filter((f) => f.endsWith('.dcm'));
      const r = spawnSync('dcmdump', ['-q', '+P', 'PatientName', ...all], { cwd: dir });
      expect(r.stderr.toString()).toBe('');
      expect(r.status).toBe(0);
    }
    const yamada = manifests[0].patients[0].studies[0].series[0].instances[0];
    const raw = spawnSync('dcmdump', ['+P', 'PatientName', join(dirOf('a', 'A'), yamada.path)]).stdout;
    expect(raw.indexOf(Buffer.concat([Buffer.from('PN ['), YAMADA_BYTES, Buffer.from(']')]))).toBeGreaterThan(
      0,
    );
    const b = manifests[1];
    const sato = b.patients.find((p) => p.characterSet === 'ISO_IR 192')?.studies[0].series[0].instances[0];
    const utf8 = spawnSync('dcmdump', [
      '+U8',
      '+P',
      'PatientName',
      join(dirOf('a', 'B'), sato?.path as string),
    ]);
    expect(utf8.stdout.toString('utf8')).toContain('[Sato^Hanako=佐藤^花子=さとう^はなこ]');
  });

  it('writes one KOS per study referencing every instance at the Imaging Document Source', () => {
    for (const { m, s } of allStudies()) {
      const bytes = read(m, s.kos.path);
      const kos = readKos(bytes);
      expect(kos.sopInstanceUid).toBe(s.kos.documentUniqueId);
      expect(kos.studyInstanceUid).toBe(s.studyInstanceUid);
      expect(kos.patientId).toMatch(/^JP100[123]$/);
      expect(kos.issuerOfPatientId).toBe('1.3.6.1.4.1.21367.13.20.1000');
      expect(kos.series).toEqual(
        s.series.map((x) => ({
          studyInstanceUid: s.studyInstanceUid,
          seriesInstanceUid: x.seriesInstanceUid,
          retrieveLocationUid: m.idsRepositoryUniqueId,
          retrieveAeTitle: undefined,
          instances: x.instances.map((i) => ({
            sopClassUid: i.sopClassUid,
            sopInstanceUid: i.sopInstanceUid,
          })),
        })),
      );
      const { dataset, transferSyntaxUid } = parsePart10(bytes);
      expect(transferSyntaxUid).toBe(TS_EXPLICIT_VR_LE);
      expect(stringValue(dataset, 0x00080016)).toBe('1.2.840.10008.5.1.4.1.1.88.59');
      expect(stringValue(dataset, 0x00080060)).toBe('KO');
      expect(stringValue(dataset, 0x0040a040)).toBe('CONTAINER');
      const title = items(dataset, 0x0040a043)[0];
      expect([0x00080100, 0x00080102, 0x00080104].map((t) => stringValue(title, t))).toEqual([
        '113030',
        'DCM',
        'Manifest',
      ]);
      expect(stringValue(items(dataset, 0x0040a504)[0], 0x0040db00)).toBe('2010');
      const imageItems = items(dataset, 0x0040a730).filter(
        (i: ParsedDataset) => stringValue(i, 0x0040a040) === 'IMAGE',
      );
      expect(imageItems.map((i) => stringValue(items(i, 0x00081199)[0], 0x00081155))).toEqual(
        s.series.flatMap((x) => x.instances.map((i) => i.sopInstanceUid)),
      );
      for (const i of imageItems) expect(stringValue(i, 0x0040a010)).toBe('CONTAINS');
    }
  });

  withDsrdump('dsrdump accepts every KOS as a valid Key Object Selection Document', () => {
    for (const { m, s } of allStudies()) {
      for (const k of [s.kos, ...s.deprecatedKos]) {
        const r = spawnSync('dsrdump', ['-q', join(dirOf('a', m.spec.community), k.path)]);
        expect(r.status).toBe(0);
        expect(r.stdout.toString()).toContain('Key Object Selection Document');
        expect(r.stdout.toString()).toContain('<CONTAINER:(,,"Manifest")=SEPARATE>');
      }
    }
  });

  it('gives XDS metadata whose hash and size are those of the KOS file bytes', () => {
    for (const m of manifests) {
      expect(m.documentEntries).toHaveLength(m.spec.kosDocuments);
      for (const d of m.documentEntries) {
        const bytes = read(m, d.path);
        expect(d.hash).toBe(sha1(bytes));
        expect(d.hash).toMatch(/^[0-9a-f]{40}$/);
        expect(d.size).toBe(bytes.length);
        expect(d.uniqueId).toBe(readKos(bytes).sopInstanceUid);
        expect(d.entryUUID).toMatch(
          /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
        );
        expect(d.homeCommunityId).toBe(m.homeCommunityId);
        expect(d.repositoryUniqueId).toBe(m.repositoryUniqueId);
        expect(d.mimeType).toBe('application/dicom');
        expect(d.objectType).toBe('urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1');
        expect(d.formatCode).toMatchObject({
          code: '1.2.840.10008.5.1.4.1.1.88.59',
          scheme: '1.2.840.10008.2.6.1',
        });
        expect(d.typeCode).toMatchObject({ code: '18748-4', scheme: '2.16.840.1.113883.6.1' });
        expect(d.confidentialityCode).toEqual([
          { code: 'N', scheme: '2.16.840.1.113883.5.25', display: 'normal' },
        ]);
        expect(d.eventCodeList[0].scheme).toBe('1.2.840.10008.2.16.4');
        expect(d.languageCode).toBe('ja-JP');
        expect(d.creationTime).toMatch(/^\d{14}$/);
        expect(d.serviceStartTime).toMatch(/^\d{14}$/);
        expect(d.sourcePatientInfo.map((l) => l.slice(0, 6))).toEqual([
          'PID-3|',
          'PID-5|',
          'PID-7|',
          'PID-8|',
        ]);
        expect(d.author[0].authorInstitution[0]).toMatch(/^[^^]+\^{9}[0-9.]+$/);
      }
      const patientOf = (d: { patientId: string }) => m.patients.find((p) => p.id === d.patientId);
      for (const d of m.documentEntries) expect(patientOf(d)).toBeDefined();
    }
    const a = manifests[0].documentEntries;
    // the Annex H patient: PID-5 in UTF-8, study 2023-04-12 10:15 JST = 01:15 UTC
    expect(a[0].sourcePatientInfo[1]).toBe(
      'PID-5|Yamada^Tarou^^^^^L^A~山田^太郎^^^^^L^I~やまだ^たろう^^^^^L^P',
    );
    expect(a[0].sourcePatientId).toBe('JP1001^^^&1.3.6.1.4.1.21367.13.70.101.6&ISO');
    expect(a[0].patientId).toBe('JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO');
    expect(a[0].serviceStartTime).toBe('20230412011500');
    expect(a[0].eventCodeList).toEqual([
      { code: 'CT', scheme: '1.2.840.10008.2.16.4', display: 'Computed Tomography' },
    ]);
  });

  it('has one Deprecated KOS replaced by an Approved one, with submission sets and associations', () => {
    const entries = manifests.flatMap((m) => m.documentEntries);
    const deprecated = entries.filter((d) => d.availabilityStatus.endsWith(':Deprecated'));
    expect(deprecated).toHaveLength(1);
    expect(
      entries.filter((d) => d.availabilityStatus === 'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved'),
    ).toHaveLength(entries.length - 1);
    const a = manifests[0];
    const study = a.patients[0].studies[0] as ManifestStudy;
    expect(study.deprecatedKos.map((k) => k.entryUUID)).toEqual([deprecated[0].entryUUID]);
    // the preliminary manifest references the first series only
    const old = readKos(read(a, study.deprecatedKos[0].path));
    expect(old.series.map((x) => x.seriesInstanceUid)).toEqual([study.series[0].seriesInstanceUid]);
    expect(
      deprecated[0].creationTime <
        (entries.find((d) => d.entryUUID === study.kos.entryUUID)?.creationTime ?? ''),
    ).toBe(true);
    expect(a.associations).toContainEqual(
      expect.objectContaining({
        associationType: 'urn:ihe:iti:2007:AssociationType:RPLC',
        sourceObject: study.kos.entryUUID,
        targetObject: study.deprecatedKos[0].entryUUID,
      }),
    );
    for (const m of manifests) {
      expect(m.submissionSets).toHaveLength(m.documentEntries.length);
      const hasMember = m.associations.filter(
        (x) => x.associationType === 'urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember',
      );
      expect(hasMember).toHaveLength(m.documentEntries.length);
      m.documentEntries.forEach((d, i) => {
        const ss = m.submissionSets[i];
        expect(hasMember[i]).toMatchObject({
          sourceObject: ss.entryUUID,
          targetObject: d.entryUUID,
          submissionSetStatus: 'Original',
        });
        expect(ss.patientId).toBe(d.patientId);
        expect(ss.sourceId).toMatch(/^[0-9.]+$/);
        expect(ss.submissionTime >= d.creationTime).toBe(true);
      });
    }
  });

  it('shares patients across communities as the demo needs, with distinct identifiers', () => {
    const communitiesOf = (id: string) =>
      manifests.filter((m) => m.patients.some((p) => p.id === id)).map((m) => m.spec.community);
    expect(communitiesOf('JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO')).toEqual(['A', 'B', 'C']);
    expect(communitiesOf('JP1002^^^&1.3.6.1.4.1.21367.13.20.1000&ISO')).toEqual(['B', 'C']);
    expect(communitiesOf('JP1003^^^&1.3.6.1.4.1.21367.13.20.1000&ISO')).toEqual(['B']);
    expect(new Set(manifests.map((m) => m.homeCommunityId)).size).toBe(3);
    expect(new Set(manifests.map((m) => m.repositoryUniqueId)).size).toBe(3);
    expect(new Set(manifests.map((m) => m.idsRepositoryUniqueId)).size).toBe(3);

    const uids = allStudies().flatMap(({ s }) => [
      s.studyInstanceUid,
      s.kos.documentUniqueId,
      ...s.deprecatedKos.map((k) => k.documentUniqueId),
      ...s.series.flatMap((x) => [x.seriesInstanceUid, ...x.instances.map((i) => i.sopInstanceUid)]),
    ]);
    expect(new Set(uids).size).toBe(uids.length);
    for (const u of uids) expect(u).toMatch(/^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/);
    expect(Math.max(...uids.map((u) => u.length))).toBeLessThanOrEqual(64);
    const uuids = manifests.flatMap((m) => [
      ...m.documentEntries.map((d) => d.entryUUID),
      ...m.submissionSets.map((x) => x.entryUUID),
      ...m.associations.map((x) => x.entryUUID),
    ]);
    expect(new Set(uuids).size).toBe(uuids.length);

    for (const { s } of allStudies()) {
      expect(s.series.length).toBeGreaterThanOrEqual(2);
      expect(s.series.length).toBeLessThanOrEqual(3);
      for (const x of s.series) {
        expect(x.instances.length).toBeGreaterThanOrEqual(3);
        expect(x.instances.length).toBeLessThanOrEqual(5);
        for (const i of x.instances) {
          if (x.transferSyntaxUid === TS_EXPLICIT_VR_LE || x.transferSyntaxUid === TS_IMPLICIT_VR_LE)
            expect(i.size).toBeGreaterThan(200 * 1024 * 0.99);
          expect(i.size).toBeLessThanOrEqual(400 * 1024);
        }
      }
    }
  });
});
