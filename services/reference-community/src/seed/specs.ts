/**
 * Ready-made seed specs: the three demo communities A, B and C, community D (`--orthanc`), and the
 * one-big-study benchmark spec.
 */
import { TS_EXPLICIT_VR_LE, TS_IMPLICIT_VR_LE, TS_JPEG_LOSSLESS_SV1, TS_JPEG_LS_LOSSLESS } from './dicom';
import { assertUid, parseCx } from './ids';
import type { ConsentSpec, PatientSpec, SeedSpec, StudySpec } from './types';
import { DEMO_CONSENTS } from './consent';

/** Assigning authority of the affinity domain's patient ids, shared by all demo communities. */
export const DEMO_AFFINITY_DOMAIN_OID = '1.3.6.1.4.1.21367.13.20.1000';
/** Community OIDs of the demo: homeCommunityId = urn:oid:<oid>. */
export const DEMO_COMMUNITY_OIDS = {
  A: '1.3.6.1.4.1.21367.13.70.101',
  B: '1.3.6.1.4.1.21367.13.70.102',
  C: '1.3.6.1.4.1.21367.13.70.103',
  /** `npm run demo -- --orthanc`: the community whose images are in Orthanc, behind the bridge. */
  D: '1.3.6.1.4.1.21367.13.70.104',
} as const;
export const BENCHMARK_COMMUNITY_OID = '1.3.6.1.4.1.21367.13.70.190';

const KiB = 1024;

/**
 * The identifiers of a community derived from one OID: homeCommunityId urn:oid:OID, uidRoot OID.1,
 * repository OID.2, Imaging Document Source OID.3, submission sourceId OID.4, institution OID.5 (and, in
 * the demo, OID.6 assigns the community's local patient ids).
 */
export function communityIds(
  label: string,
  oid: string,
  institutionName: string,
): Pick<
  SeedSpec,
  | 'community'
  | 'homeCommunityId'
  | 'uidRoot'
  | 'repositoryUniqueId'
  | 'idsRepositoryUniqueId'
  | 'sourceId'
  | 'institution'
> {
  assertUid(oid, 'community OID');
  return {
    community: label,
    homeCommunityId: `urn:oid:${oid}`,
    uidRoot: `${oid}.1`,
    repositoryUniqueId: `${oid}.2`,
    idsRepositoryUniqueId: `${oid}.3`,
    sourceId: `${oid}.4`,
    institution: { name: institutionName, oid: `${oid}.5` },
  };
}

function affinityId(id: string): string {
  return `${id}^^^&${DEMO_AFFINITY_DOMAIN_OID}&ISO`;
}

/** Patient 1: Japanese name in ISO 2022 IR 87, the PS3.5 Annex H example. */
const YAMADA = {
  id: affinityId('JP1001'),
  name: { alphabetic: 'Yamada^Tarou', ideographic: '山田^太郎', phonetic: 'やまだ^たろう' },
  characterSet: 'ISO 2022 IR 87',
  birthDate: '19650312',
  sex: 'M',
} as const;

/** Patient 2: Japanese name in ISO_IR 192 (UTF-8). */
const SATO = {
  id: affinityId('JP1002'),
  name: { alphabetic: 'Sato^Hanako', ideographic: '佐藤^花子', phonetic: 'さとう^はなこ' },
  characterSet: 'ISO_IR 192',
  birthDate: '19780824',
  sex: 'F',
} as const;

/** Patient 3: ASCII only (default repertoire). */
const TANAKA = {
  id: affinityId('JP1003'),
  name: { alphabetic: 'Tanaka^Kenji' },
  birthDate: '19900105',
  sex: 'M',
} as const;

const MIXED_SYNTAXES = [TS_EXPLICIT_VR_LE, TS_IMPLICIT_VR_LE];

function patient(
  p: typeof YAMADA | typeof SATO | typeof TANAKA,
  oid: string,
  studies: StudySpec[],
  consents?: ConsentSpec[],
): PatientSpec {
  return {
    ...p,
    name: { ...p.name },
    // the community's own MRN: same number, the community's assigning authority
    localId: `${parseCx(p.id).id}^^^&${oid}.6&ISO`,
    studies,
    ...(consents ? { consents } : {}),
  };
}

/**
 * Three communities sharing patients: patient 1 (ISO 2022 IR 87 name) has studies in A, B and C; patient 2
 * (ISO_IR 192) in B and C; patient 3 (ASCII) only in B. 2–3 series per study, 3–5 instances per series,
 * 200–400 KiB per instance (before compression); some series in Implicit VR LE, patient 3's head CT in JPEG
 * Lossless and JPEG-LS Lossless; one Deprecated (replaced) KOS, in A. Consent in B (BPPC): patient 2 opted
 * out, patient 3 agreed to sharing, patient 1 has nothing on file.
 */
export function defaultDemoSpecs(): SeedSpec[] {
  const { A, B, C } = DEMO_COMMUNITY_OIDS;
  return [
    {
      ...communityIds('A', A, 'Sakura General Hospital'),
      patients: [
        patient(YAMADA, A, [
          {
            description: '胸部CT 単純',
            modality: 'CT',
            date: '20230412',
            time: '101500',
            series: 2,
            instancesPerSeries: [5, 4],
            instanceSize: 320 * KiB,
            transferSyntaxes: MIXED_SYNTAXES,
            replacesEarlierManifest: true,
          },
        ]),
      ],
    },
    {
      ...communityIds('B', B, 'Momiji University Hospital'),
      patients: [
        patient(YAMADA, B, [
          {
            description: '頭部MRI',
            modality: 'MR',
            date: '20240903',
            time: '141000',
            series: 3,
            instancesPerSeries: 4,
            instanceSize: 256 * KiB,
          },
        ]),
        patient(
          SATO,
          B,
          [
            {
              description: '腹部CT 造影',
              modality: 'CT',
              date: '20241105',
              time: '093000',
              series: 3,
              instancesPerSeries: [5, 5, 3],
              instanceSize: 384 * KiB,
              transferSyntaxes: [TS_EXPLICIT_VR_LE, TS_EXPLICIT_VR_LE, TS_IMPLICIT_VR_LE],
            },
          ],
          // Sato objects to sharing through the regional network (BPPC, seed/consent.ts).
          DEMO_CONSENTS.optedOut,
        ),
        patient(
          TANAKA,
          B,
          [
            {
              description: 'Chest X-ray PA',
              modality: 'CR',
              date: '20240618',
              time: '083000',
              series: 2,
              instancesPerSeries: 3,
              instanceSize: 400 * KiB,
            },
            {
              description: 'Head CT',
              modality: 'CT',
              date: '20241202',
              time: '221500',
              series: 2,
              instancesPerSeries: 4,
              instanceSize: 224 * KiB,
              // stored losslessly compressed (NIST iig_2018-5402a, rig_2018-5422a)
              transferSyntaxes: [TS_JPEG_LOSSLESS_SV1, TS_JPEG_LS_LOSSLESS],
            },
          ],
          DEMO_CONSENTS.shared,
        ),
      ],
    },
    {
      ...communityIds('C', C, 'Kaede Imaging Center'),
      patients: [
        patient(YAMADA, C, [
          {
            description: '胸部X線 正面',
            modality: 'CR',
            date: '20250120',
            time: '110000',
            series: 2,
            instancesPerSeries: 3,
            instanceSize: 288 * KiB,
          },
        ]),
        patient(SATO, C, [
          {
            description: '膝MRI',
            modality: 'MR',
            date: '20250214',
            time: '160500',
            series: 2,
            instancesPerSeries: [4, 5],
            instanceSize: 208 * KiB,
            transferSyntaxes: [TS_IMPLICIT_VR_LE, TS_EXPLICIT_VR_LE],
          },
        ]),
      ],
    },
  ];
}

/**
 * Community D of `npm run demo -- --orthanc`: studies of patients 1 and 2 that the demo loads into
 * Orthanc (STOW-RS), served by the imaging-source bridge and published by it (its reference community
 * holds no seeds of its own).
 */
export function orthancDemoSpec(): SeedSpec {
  const { D } = DEMO_COMMUNITY_OIDS;
  return {
    ...communityIds('D', D, 'Hinoki Clinic (PACS: Orthanc)'),
    patients: [
      patient(YAMADA, D, [
        {
          description: '腹部超音波',
          modality: 'US',
          date: '20250305',
          time: '093000',
          series: 2,
          instancesPerSeries: [4, 3],
          instanceSize: 192 * KiB,
          transferSyntaxes: MIXED_SYNTAXES,
        },
      ]),
      patient(SATO, D, [
        {
          description: '胸部CT 単純',
          modality: 'CT',
          date: '20250311',
          time: '150000',
          series: 1,
          instancesPerSeries: 5,
          instanceSize: 256 * KiB,
        },
      ]),
    ],
  };
}

export interface LargeSeedOptions {
  instances: number;
  /** bytes per instance */
  instanceSize: number;
  /** community OID (homeCommunityId urn:oid:OID); default BENCHMARK_COMMUNITY_OID */
  communityOid?: string;
  /** instances per series at most; default 1000 */
  maxSeriesSize?: number;
}

/** One CT study of `instances` instances for one patient, split into series of at most maxSeriesSize. */
export function largeSeedSpec(o: LargeSeedOptions): SeedSpec {
  if (!Number.isInteger(o.instances) || o.instances < 1)
    throw new Error(`instances must be ≥ 1: ${o.instances}`);
  const oid = o.communityOid ?? BENCHMARK_COMMUNITY_OID;
  const seriesCount = Math.ceil(o.instances / (o.maxSeriesSize ?? 1000));
  const base = Math.floor(o.instances / seriesCount);
  const perSeries = Array.from(
    { length: seriesCount },
    (_, k) => base + (k < o.instances % seriesCount ? 1 : 0),
  );
  return {
    ...communityIds('BENCH', oid, 'Benchmark Imaging Center'),
    patients: [
      {
        id: affinityId('JP9001'),
        name: { alphabetic: 'Benchmark^Patient' },
        birthDate: '19700101',
        sex: 'O',
        studies: [
          {
            description: 'Benchmark CT',
            modality: 'CT',
            date: '20250301',
            time: '120000',
            series: seriesCount,
            instancesPerSeries: perSeries,
            instanceSize: o.instanceSize,
          },
        ],
      },
    ],
  };
}
