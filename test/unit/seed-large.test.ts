import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, parseSize } from '../../services/reference-community/src/seed/cli';
import { parsePart10, stringValue } from '../../services/reference-community/src/seed/dicom';
import {
  generateCommunitySeed,
  largeSeedSpec,
  readKos,
  type CharacterSet,
  type SeedManifest,
  type SeedSpec,
} from '../../services/reference-community/src/seed/generate';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'seed-large-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const quiet = () => undefined;
const manifestAt = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as SeedManifest;

describe('seed CLI and large mode', () => {
  it('parses sizes', () => {
    expect(parseSize('524288')).toBe(524288);
    expect(parseSize('512KiB')).toBe(524288);
    expect(parseSize('512k')).toBe(524288);
    expect(parseSize('0.5MiB')).toBe(524288);
    expect(parseSize('300kB')).toBe(300000);
    expect(() => parseSize('12 parsecs')).toThrow(/not a size/);
    expect(() => parseSize('0')).toThrow(/positive/);
  });

  it('--large makes N instances of the requested size in one study of one patient', async () => {
    const out = join(root, 'large');
    await main(
      [
        '--out',
        out,
        '--large',
        '--instances',
        '7',
        '--size',
        '48KiB',
        '--community-oid',
        '1.2.3.4.5',
        '--series-size',
        '3',
      ],
      quiet,
    );
    const m = manifestAt(out);
    expect(m.homeCommunityId).toBe('urn:oid:1.2.3.4.5');
    expect(m.idsRepositoryUniqueId).toBe('1.2.3.4.5.3');
    expect(m.patients).toHaveLength(1);
    expect(m.patients[0].studies).toHaveLength(1);
    const study = m.patients[0].studies[0];
    expect(study.series.map((s) => s.instances.length)).toEqual([3, 2, 2]);
    const instances = study.series.flatMap((s) => s.instances);
    expect(instances).toHaveLength(7);
    for (const i of instances) {
      expect(statSync(join(out, i.path)).size).toBe(i.size);
      expect(i.size).toBeLessThanOrEqual(48 * 1024);
      expect(i.size).toBeGreaterThan(48 * 1024 * 0.99);
      const { dataset } = parsePart10(readFileSync(join(out, i.path)));
      expect(stringValue(dataset, 0x00080018)).toBe(i.sopInstanceUid);
    }
    const kos = readKos(readFileSync(join(out, study.kos.path)));
    expect(kos.series.flatMap((s) => s.instances.map((x) => x.sopInstanceUid))).toEqual(
      instances.map((i) => i.sopInstanceUid),
    );
    expect(new Set(kos.series.map((s) => s.retrieveLocationUid))).toEqual(new Set(['1.2.3.4.5.3']));
  });

  it('large specs split into series of at most 1000 by default', () => {
    const spec = largeSeedSpec({ instances: 4001, instanceSize: 512 * 1024 });
    const study = spec.patients[0].studies[0];
    expect(study.series).toBe(5);
    expect(study.instancesPerSeries).toEqual([801, 800, 800, 800, 800]);
  });

  it('--spec reads a JSON spec; other modalities become Secondary Capture', async () => {
    const spec: SeedSpec = {
      community: 'X',
      homeCommunityId: 'urn:oid:1.2.392.999.1',
      uidRoot: '1.2.392.999.1.1',
      repositoryUniqueId: '1.2.392.999.1.2',
      idsRepositoryUniqueId: '1.2.392.999.1.3',
      utcOffset: '+0000',
      patients: [
        {
          id: 'P1^^^&1.2.392.999.9&ISO',
          name: { alphabetic: 'Doe^Jane' },
          birthDate: '20000229',
          sex: 'F',
          studies: [
            {
              description: 'US abdomen',
              modality: 'US',
              date: '20250101',
              series: 1,
              instancesPerSeries: 2,
              instanceSize: 8000,
              transferSyntaxes: ['1.2.840.10008.1.2'],
            },
          ],
        },
      ],
    };
    const specFile = join(root, 'spec.json');
    writeFileSync(specFile, JSON.stringify(spec));
    const out = join(root, 'from-spec');
    await main(['--out', out, '--spec', specFile], quiet);
    const m = manifestAt(out);
    const inst = m.patients[0].studies[0].series[0].instances[0];
    expect(inst.sopClassUid).toBe('1.2.840.10008.5.1.4.1.1.7');
    expect(inst.transferSyntaxUid).toBe('1.2.840.10008.1.2');
    const { dataset } = parsePart10(readFileSync(join(out, inst.path)));
    expect(stringValue(dataset, 0x00080064)).toBe('SYN');
    expect(m.documentEntries[0].serviceStartTime).toBe('20250101090000');
    expect(m.submissionSets[0].sourceId).toBe('1.2.392.999.1.1.9');
  });

  it('rejects bad specs and arguments before writing anything', async () => {
    const base = largeSeedSpec({ instances: 1, instanceSize: 4096 });
    const bad = (change: (s: SeedSpec) => void) => {
      const s = structuredClone(base);
      change(s);
      return generateCommunitySeed(s, join(root, 'never'));
    };
    await expect(bad((s) => (s.uidRoot = '1.2.03'))).rejects.toThrow(/uidRoot/);
    await expect(bad((s) => (s.uidRoot = '1.2.3.' + '9'.repeat(60)))).rejects.toThrow(/64/);
    await expect(bad((s) => (s.patients[0].id = 'P1'))).rejects.toThrow(/CX/);
    await expect(bad((s) => (s.patients[0].name.ideographic = '山田'))).rejects.toThrow(/default repertoire/);
    await expect(bad((s) => (s.patients[0].studies[0].date = '20250230'))).rejects.toThrow(/date/);
    await expect(bad((s) => (s.patients[0].characterSet = 'ISO_IR 100' as CharacterSet))).rejects.toThrow(
      /unsupported character set/,
    );
    await expect(
      bad((s) => (s.patients[0].studies[0].transferSyntaxes = ['1.2.840.10008.1.2.4.50'])),
    ).rejects.toThrow(/transfer syntax/);
    await expect(bad((s) => (s.patients[0].studies[0].instancesPerSeries = [1, 2]))).rejects.toThrow(
      /entries/,
    );
    expect(() => statSync(join(root, 'never'))).toThrow();
    await expect(main(['--out', root], quiet)).rejects.toThrow(/usage/);
    await expect(main(['--out', root, '--large', '--size', '1KiB'], quiet)).rejects.toThrow(/usage/);
  });
});
